//! Trying a plugin on one event, without a store: what a plugin author runs to
//! see what the handler makes of an event (`projector plugins try`).

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::{json, Value as Json};

use super::Plugins;
use crate::outcome::Outcome;
use crate::source::NewEvent;
use crate::{Event, Mutation, Property};

/// Handles `event` with the projection in `file`, the way a lane would (output
/// bounds and write scope included), and says what came of it as JSON:
/// `{"projection", "version", "outcome": "apply"|"park"|"retry", "mutations" | "error"}`.
pub fn trial(file: &Path, cache: &Path, event: NewEvent, deadline: Duration) -> Result<Json> {
    let plugins = Plugins::load_files(&[file.to_owned()], cache)?;
    let Some(plugin) = plugins.projections.first() else {
        bail!("{} is an upcaster, not a projection: only projections can be tried", file.display());
    };
    let event = Event {
        id: event.id.unwrap_or_else(uuid::Uuid::new_v4).to_string(),
        stream: event.stream,
        event_type: event.event_type,
        schema_version: event.schema_version,
        revision: 0,
        position: 1,
        data: event.data.to_string(),
        metadata: event.metadata.to_string(),
    };
    let mut instance = plugin.instantiate(deadline)?;
    let outcome = match instance.handle(std::slice::from_ref(&event)) {
        Ok(mut results) => Outcome::from_handler(results.remove(0), &plugin.scope),
        Err(trap) => Outcome::Park(format!("trap: {trap}")),
    };
    let head = json!({"projection": plugin.name(), "version": plugin.manifest.version, "subscribes": plugin.subscribes(&event)});
    let mut answer = head.as_object().cloned().unwrap_or_default();
    match outcome {
        Outcome::Apply(mutations) => {
            answer.insert("outcome".into(), "apply".into());
            answer.insert("mutations".into(), mutations.iter().map(mutation_json).collect());
        }
        Outcome::Park(error) => {
            answer.insert("outcome".into(), "park".into());
            answer.insert("error".into(), error.into());
        }
        Outcome::Retry(error) => {
            answer.insert("outcome".into(), "retry".into());
            answer.insert("error".into(), error.into());
        }
        Outcome::Skip => {
            answer.insert("outcome".into(), "skip".into());
        }
    }
    Ok(Json::Object(answer))
}

/// A mutation as JSON, for people to read.
pub fn mutation_json(m: &Mutation) -> Json {
    let node = |n: &crate::NodeRef| json!([n.label, n.key]);
    let props = |set: &[Property]| -> Json { set.iter().map(|p| (p.name.clone(), crate::json::value(&p.value))).collect::<serde_json::Map<_, _>>().into() };
    match m {
        Mutation::MergeNode(n) => json!({"merge_node": node(&n.node), "set": props(&n.set)}),
        Mutation::RemoveProperties(r) => json!({"remove_properties": node(&r.node), "names": r.names}),
        Mutation::DeleteNode(n) => json!({"delete_node": node(n)}),
        Mutation::MergeEdge(e) => json!({"merge_edge": [node(&e.edge.from), e.edge.rel_type, node(&e.edge.to)], "set": props(&e.set)}),
        Mutation::DeleteEdge(e) => json!({"delete_edge": [node(&e.from), e.rel_type, node(&e.to)]}),
        Mutation::DeleteEdges(e) => json!({"delete_edges": [node(&e.from), e.rel_type]}),
    }
}
