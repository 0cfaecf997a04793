//! A test projection. For every event it writes a `Seen` node that records the
//! event and the revision this instance saw last on the same stream, so a test
//! can prove per-key order. An event whose data has `"fail"` fails on demand:
//! `"permanent"`, `"transient"`, or `"trap"` (a panic, which traps the instance).
//! Built with the feature `healed`, it is the fixed version: it never fails.

use std::cell::RefCell;
use std::collections::HashMap;

use projector_sdk::*;

pub struct Recorder;

thread_local! {
    static LAST_SEEN: RefCell<HashMap<String, u64>> = RefCell::new(HashMap::new());
}

impl Projection for Recorder {
    fn manifest() -> Manifest {
        let version = if cfg!(feature = "healed") { "0.1.0+healed" } else { "0.1.0" };
        Manifest::new("recorder", version)
            .streams(["test-"])
            .label("Seen", "id")
    }

    fn handle(event: &Event) -> Outcome {
        let data: serde_json::Value = event.data()?;
        match data.get("fail").and_then(|f| f.as_str()).filter(|_| !cfg!(feature = "healed")) {
            Some("permanent") => return Err(HandlerError::permanent("asked to fail")),
            Some("transient") => return Err(HandlerError::transient("asked to fail for now")),
            Some("trap") => panic!("asked to trap"),
            _ => {}
        }
        let previous = LAST_SEEN.with(|seen| seen.borrow_mut().insert(event.stream.clone(), event.revision));
        Ok(vec![merge_node("Seen", &event.id)
            .set("stream", &event.stream)
            .set("revision", event.revision as i64)
            .set("position", event.position as i64)
            .set("previous", previous.map(|p| p as i64))
            .set("version", env!("CARGO_PKG_VERSION"))
            .into()])
    }
}

projection!(Recorder);
