//! ServerFeatures: the version the stand-in plays, and the methods it has.

use tonic::{Request, Response, Status};

use crate::proto::server_features::server_features_server::ServerFeatures;
use crate::proto::server_features::{SupportedMethod, SupportedMethods};
use crate::proto::Empty;
use crate::Version;

pub struct Features {
    pub version: Version,
}

#[tonic::async_trait]
impl ServerFeatures for Features {
    /// Batch appends, and persistent subscriptions to `$all` and their management.
    async fn get_supported_methods(&self, _: Request<Empty>) -> Result<Response<SupportedMethods>, Status> {
        let service = "event_store.client.persistent_subscriptions.persistentsubscriptions";
        let method = |name: &str, features: &[&str]| SupportedMethod {
            method_name: name.into(),
            service_name: service.into(),
            features: features.iter().map(|f| f.to_string()).collect(),
        };
        let batch_append = SupportedMethod { method_name: "batchappend".into(), service_name: "event_store.client.streams.streams".into(), features: vec![] };
        let methods = vec![
            batch_append,
            method("create", &["stream", "all"]),
            method("read", &["stream", "all"]),
            method("getinfo", &["stream", "all"]),
            method("replayparked", &[]),
            method("list", &[]),
            method("restartsubsystem", &[]),
        ];
        Ok(Response::new(SupportedMethods { methods, event_store_server_version: self.version.to_string() }))
    }
}
