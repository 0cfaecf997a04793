//! Handles every event and writes nothing.

use projector_sdk::*;

pub struct Noop;

impl Projection for Noop {
    fn manifest() -> Manifest {
        Manifest::new("noop", "0.1.0")
    }

    fn handle(_: &Event) -> Outcome {
        Ok(Vec::new())
    }
}

projection!(Noop);
