//! A hostile projection, for the sandbox tests. An event's `attack` field picks
//! what it does; without one it writes a harmless `Mark` node.

use projector_sdk::*;

pub struct Adversary;

impl Projection for Adversary {
    fn manifest() -> Manifest {
        let manifest = Manifest::new("adversary", "0.1.0").streams(["test-"]).label("Mark", "id");
        // Built with `trespasser`, it claims the recorder's label as well.
        if cfg!(feature = "trespasser") {
            manifest.shared_label("Seen", "id")
        } else {
            manifest
        }
    }

    fn handle(event: &Event) -> Outcome {
        let data: serde_json::Value = event.data()?;
        let attack = data.get("attack").and_then(|a| a.as_str()).unwrap_or("");
        let mark = || merge_node("Mark", &event.id);
        match attack {
            "loop" => loop {
                std::hint::black_box(&event);
            },
            "alloc" => {
                // Reserve 16 MiB at a time, touching one byte of each: memory grows fast.
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut chunk = Vec::with_capacity(16 << 20);
                    chunk.push(1u8);
                    hoard.push(std::hint::black_box(chunk));
                }
            }
            "recurse" => Ok(vec![mark().set("depth", recurse(std::hint::black_box(1)) as i64).into()]),
            "trap" => panic!("a plugin bug"),
            // Twice the bound: enough to cross it, little enough to build well
            // inside the test's deadline on a loaded machine.
            "flood" => Ok((0..20_000).map(|i| mark().set("i", i).into()).collect()),
            "huge-value" => Ok(vec![mark().set("blob", "x".repeat(2 << 20)).into()]),
            // Each value within its bound, together 12 MiB.
            "wide" => Ok((0..12).map(|i| mark().set(&format!("part{i}"), "x".repeat(1 << 20)).into()).collect()),
            // Lists Neo4j would refuse or change: every sink refuses them.
            "mixed-list" => Ok(vec![mark().set("tags", vec![Scalar::Text("a".into()), Scalar::Integer(1)]).into()]),
            "null-in-list" => Ok(vec![mark().set("scores", vec![Scalar::Float(0.5), Scalar::Null]).into()]),
            "foreign-label" => Ok(vec![merge_node("Seen", "stolen").set("by", "adversary").into()]),
            "log-flood" => {
                // 64 MiB of log in 64 KiB lines.
                let line = "x".repeat(64 << 10);
                for _ in 0..1000 {
                    log::warn(&line);
                }
                Ok(vec![mark().into()])
            }
            "injection" => Ok(vec![mark().set("text", data["text"].as_str().unwrap_or_default()).into()]),
            _ => Ok(vec![mark().into()]),
        }
    }
}

/// Recursion with no end, which only the stack limit stops.
#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let frame = std::hint::black_box([n; 32]);
    recurse(frame[0] + 1) + frame[31]
}

projection!(Adversary);
