//! {{name}}: a Projector projection. `handle` turns one event into mutations
//! of the read model; `manifest` says what it reads and what it writes.
//!
//! Build:  ./build.sh        (a component: {{name}}.wasm)
//! Test:   cargo test        (natively, no host)
//! Try:    projector plugins try {{name}}.wasm --event sample-event.json

use projector_sdk::*;

pub struct Projection;

impl projector_sdk::Projection for Projection {
    fn manifest() -> Manifest {
        Manifest::new("{{name}}", "0.1.0").events(["InterviewCreated"]).label("Interview", "id")
    }

    fn handle(event: &Event) -> Outcome {
        let title: String = event.field("/title")?;
        Ok(vec![merge_node("Interview", &event.stream).set("title", title).into()])
    }
}

projection!(Projection);

#[cfg(test)]
mod tests {
    use super::*;
    use projector_sdk::testing::{event, json, mutations};

    #[test]
    fn an_interview_gets_its_title() {
        let created = event("InterviewCreated", "Interview-1", 0, json!({"title": "Kick-off"}));
        let out = mutations::<Projection>(&[created]);
        assert_eq!(out, vec![merge_node("Interview", "Interview-1").set("title", "Kick-off").into()]);
    }
}
