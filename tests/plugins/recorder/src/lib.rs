//! A test projection. For every event it writes a `Seen` node that records the
//! event and the revision this instance saw last on the same stream, so a test
//! can prove per-key order. An event whose data has `"fail"` fails on demand:
//! `"permanent"`, `"transient"` (logging a line each time), or `"trap"` (a
//! panic, which traps the instance).
//! Built with the feature `healed`, it is the fixed version: it never fails.
//! Built with `read-model-2`, it declares a new read-model version. Every node
//! is stamped with the build's version, so a test can tell which build handled it.
//! An event with a `part` (one of those an upcaster split an event into) is
//! recorded as `ID#PART`.

use std::cell::RefCell;
use std::collections::HashMap;

use projector_sdk::*;

pub struct Recorder;

const VERSION: &str = if cfg!(feature = "healed") {
    "0.1.0+healed"
} else if cfg!(feature = "read-model-2") {
    "0.2.0"
} else {
    "0.1.0"
};

thread_local! {
    static LAST_SEEN: RefCell<HashMap<String, u64>> = RefCell::new(HashMap::new());
}

impl Projection for Recorder {
    fn manifest() -> Manifest {
        let read_model = if cfg!(feature = "read-model-2") { 2 } else { 1 };
        Manifest::new("recorder", VERSION).streams(["test-"]).label("Seen", "id").read_model_version(read_model)
    }

    fn handle(event: &Event) -> Outcome {
        let data: serde_json::Value = event.data()?;
        match data.get("fail").and_then(|f| f.as_str()).filter(|_| !cfg!(feature = "healed")) {
            Some("permanent") => return Err(HandlerError::permanent("asked to fail")),
            Some("transient") => {
                // A line per call, so that a test can count the handler's calls.
                log::warn(&format!("recorder: failing for now at position {}", event.position));
                return Err(HandlerError::transient("asked to fail for now"));
            }
            Some("trap") => panic!("asked to trap"),
            _ => {}
        }
        let previous = LAST_SEEN.with(|seen| seen.borrow_mut().insert(event.stream.clone(), event.revision));
        // The parts an upcaster split one event into share its id: each gets a node of its own.
        let id = match data.get("part") {
            Some(part) => format!("{}#{part}", event.id),
            None => event.id.clone(),
        };
        Ok(vec![merge_node("Seen", &id)
            .set("stream", &event.stream)
            .set("revision", event.revision as i64)
            .set("position", event.position as i64)
            .set("previous", previous.map(|p| p as i64))
            .set("version", VERSION)
            .into()])
    }
}

projection!(Recorder);
