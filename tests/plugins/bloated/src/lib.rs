//! Declares far more labels than a host takes, each with a long key property.

use projector_sdk::*;

pub struct Bloated;

impl Projection for Bloated {
    fn manifest() -> Manifest {
        let key = "k".repeat(1000);
        (0..100_000).fold(Manifest::new("bloated", "0.1.0"), |m, i| m.label(&format!("L{i}"), &key))
    }

    fn handle(_: &Event) -> Outcome {
        Ok(Vec::new())
    }
}

projection!(Bloated);
