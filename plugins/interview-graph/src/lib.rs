//! The interview projection: interview-analyzer events into a graph of
//! Projects, Interviews, Sentences, Analyses and their dimensions.
//!
//! Read model:
//! `(Project)-[:CONTAINS_INTERVIEW]->(Interview)-[:HAS_SENTENCE]->(Sentence)-[:HAS_ANALYSIS]->(Analysis)`,
//! `(Sentence)-[:FOLLOWS]->(Sentence)` from each sentence to the one after it, and from each
//! Analysis `MENTIONS_KEYWORD`, `MENTIONS_TOPIC`, `MENTIONS_DOMAIN_KEYWORD` (to Keyword, Topic,
//! DomainKeyword) and `HAS_FUNCTION_TYPE`, `HAS_STRUCTURE_TYPE`, `HAS_PURPOSE` (to FunctionType,
//! StructureType, Purpose). SentenceCreated and AnalysisGenerated are handled at v2 only: `interview-upcasters` raises v1.

mod analysis;
mod events;
mod interview;
mod sentence;

use projector_sdk::*;

pub struct InterviewGraph;

/// The schema version this projection understands for each event type: 2 for
/// the two types whose v1 named sentences by index, 1 for the rest.
pub fn schema_version(event_type: &str) -> u32 {
    match event_type {
        "SentenceCreated" | "AnalysisGenerated" => 2,
        _ => 1,
    }
}

impl Projection for InterviewGraph {
    fn manifest() -> Manifest {
        Manifest::new("interview-graph", env!("CARGO_PKG_VERSION"))
            .events([
                "InterviewCreated",
                "InterviewMetadataUpdated",
                "InterviewStatusChanged",
                "SentenceCreated",
                "SentenceEdited",
                "AnalysisGenerated",
                "AnalysisOverridden",
                "AnalysisCleared",
            ])
            .key_by_data("/interview_id")
            .label("Project", "id")
            .shared_label("Interview", "id")
            .label("Sentence", "id")
            .label("Analysis", "id")
            .label("Keyword", "name")
            .label("Topic", "name")
            .label("DomainKeyword", "name")
            .label("FunctionType", "name")
            .label("StructureType", "name")
            .label("Purpose", "name")
            .relationships(["CONTAINS_INTERVIEW", "HAS_SENTENCE", "FOLLOWS", "HAS_ANALYSIS"])
            .relationships(analysis::DIMENSIONS.iter().map(|d| d.rel_type))
    }

    fn handle(event: &Event) -> Outcome {
        let expected = schema_version(&event.event_type);
        if event.schema_version != expected {
            return Err(HandlerError::permanent(format!(
                "{} v{} is not v{expected}: is the interview-upcasters plugin loaded?",
                event.event_type, event.schema_version
            )));
        }
        match event.event_type.as_str() {
            "InterviewCreated" => interview::created(event),
            "InterviewMetadataUpdated" => interview::metadata_updated(event),
            "InterviewStatusChanged" => interview::status_changed(event),
            "SentenceCreated" => sentence::created(event),
            "SentenceEdited" => sentence::edited(event),
            "AnalysisGenerated" => analysis::generated(event),
            "AnalysisOverridden" => analysis::overridden(event),
            "AnalysisCleared" => analysis::cleared(event),
            other => Err(HandlerError::permanent(format!("unknown event type {other}"))),
        }
    }
}

projection!(InterviewGraph);

#[cfg(test)]
mod tests;
