//! The audit trail: every change a person made to an interview (an edited
//! sentence, an overridden or cleared analysis, new interview metadata) as a
//! `Change` node, `(User)-[:MADE]->(Change)-[:CONCERNS]->(Interview)`. Changes
//! made by the system (the analysis pipeline) are not audited.
//!
//! The same projection is written in Python (`plugins/audit-trail-py`) and in
//! JavaScript (`plugins/audit-trail-js`); the three give the same read model.

use projector_sdk::*;
use serde::Deserialize;

pub struct AuditTrail;

/// The event types a person causes.
pub const AUDITED: [&str; 4] = ["SentenceEdited", "AnalysisOverridden", "AnalysisCleared", "InterviewMetadataUpdated"];

#[derive(Deserialize)]
struct Envelope {
    actor: Option<Actor>,
    occurred_at: Option<String>,
}

#[derive(Deserialize)]
struct Actor {
    #[serde(default)]
    actor_type: String,
    user_id: Option<String>,
}

impl Projection for AuditTrail {
    fn manifest() -> Manifest {
        Manifest::new("audit-trail", "0.1.0")
            .events(AUDITED)
            .key_by_data("/interview_id")
            .label("User", "id")
            .label("Change", "id")
            .shared_label("Interview", "id")
            .relationships(["MADE", "CONCERNS"])
    }

    fn handle(event: &Event) -> Outcome {
        let envelope: Envelope = event.metadata()?;
        let interview: String = event.field("/interview_id")?;
        let Some(actor) = envelope.actor.filter(|a| a.actor_type == "user") else {
            return Ok(vec![]);
        };
        let Some(user) = actor.user_id else {
            return Err(HandlerError::permanent(format!("{} has a user actor without a user_id", event.event_type)));
        };
        let change = merge_node("Change", &event.id)
            .set("type", &event.event_type)
            .set("stream", &event.stream)
            .set("revision", event.revision as i64)
            .set("at", envelope.occurred_at);
        Ok(vec![
            merge_node("User", &user).into(),
            change.into(),
            merge_edge(node("User", &user), "MADE", node("Change", &event.id)).into(),
            merge_edge(node("Change", &event.id), "CONCERNS", node("Interview", interview)).into(),
        ])
    }
}

projection!(AuditTrail);

#[cfg(test)]
mod tests {
    use super::*;
    use projector_sdk::testing::{event, mutations};
    use serde_json::json;

    fn edit(actor_type: &str) -> Event {
        event("SentenceEdited", "Sentence-s1", 3, json!({"interview_id": "i1", "sentence_id": "s1", "new_text": "x"}))
            .with_metadata(json!({"actor": {"actor_type": actor_type, "user_id": "dara"}, "occurred_at": "2025-10-21T00:00:07Z"}))
    }

    #[test]
    fn a_person_s_edit_is_audited() {
        let out = mutations::<AuditTrail>(&[edit("user")]);
        assert_eq!(out.len(), 4);
        assert!(out.contains(&merge_edge(node("Change", "Sentence-s1@3"), "CONCERNS", node("Interview", "i1")).into()));
    }

    #[test]
    fn the_system_s_changes_are_not() {
        assert_eq!(mutations::<AuditTrail>(&[edit("system")]), vec![]);
    }
}
