//! A test upcaster. `Looped` v1 never returns: each call runs to its deadline.
//! `Split` v1 with `{"parts": N}` becomes N events of `Split` v2, the i-th with
//! `{"part": i}` beside the rest of the data.

use projector_sdk::*;
use serde_json::{Map, Value};

pub struct Shaper;

impl Upcaster for Shaper {
    fn manifest() -> UpcasterManifest {
        UpcasterManifest::new("shaper", "0.1.0").upgrades("Looped", 1).upgrades("Split", 1)
    }

    fn upcast(event: Event) -> Result<Vec<Event>, String> {
        if event.event_type == "Looped" {
            let mut spins: u64 = 0;
            loop {
                spins = std::hint::black_box(spins.wrapping_add(1));
            }
        }
        let data: Map<String, Value> = serde_json::from_str(&event.data).map_err(|e| format!("data is not a JSON object: {e}"))?;
        let parts = data.get("parts").and_then(Value::as_u64).ok_or("`parts` must be a non-negative integer")?;
        Ok((0..parts)
            .map(|part| {
                let mut data = data.clone();
                data.insert("part".into(), part.into());
                Event { data: Value::Object(data).to_string(), schema_version: 2, ..event.clone() }
            })
            .collect())
    }
}

upcaster!(Shaper);
