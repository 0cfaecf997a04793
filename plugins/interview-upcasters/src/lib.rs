//! Upcasters for the interview events.
//!
//! At schema version 1, SentenceCreated and AnalysisGenerated carry the sentence's
//! position in its interview as an integer `sentence_id`. The event store names
//! sentences by UUID, so version 2 carries `sentence_id = uuid5(DNS, "<interview_id>:<index>")`
//! and the position as `index`.

use projector_sdk::*;
use serde_json::{Map, Value};
use uuid::Uuid;

pub struct InterviewUpcasters;

impl Upcaster for InterviewUpcasters {
    fn manifest() -> UpcasterManifest {
        UpcasterManifest::new("interview-upcasters", env!("CARGO_PKG_VERSION"))
            .upgrades("SentenceCreated", 1)
            .upgrades("AnalysisGenerated", 1)
    }

    fn upcast(mut event: Event) -> Result<Vec<Event>, String> {
        let mut data: Map<String, Value> =
            serde_json::from_str(&event.data).map_err(|e| format!("data is not a JSON object: {e}"))?;
        let index = data
            .get("sentence_id")
            .and_then(Value::as_u64)
            .ok_or("v1 `sentence_id` must be a non-negative integer")?;
        let interview = data
            .get("interview_id")
            .and_then(Value::as_str)
            .ok_or("`interview_id` must be a string")?;
        let id = Uuid::new_v5(&Uuid::NAMESPACE_DNS, format!("{interview}:{index}").as_bytes());
        data.insert("sentence_id".into(), id.to_string().into());
        data.insert("index".into(), index.into());
        event.data = Value::Object(data).to_string();
        event.schema_version = 2;
        Ok(vec![event])
    }
}

upcaster!(InterviewUpcasters);

#[cfg(test)]
mod tests {
    use super::*;
    use projector_sdk::testing::event;
    use serde_json::json;

    #[test]
    fn integer_sentence_id_becomes_uuid5_and_index() {
        let v1 = event("SentenceCreated", "Sentence-x", 0, json!({"interview_id": "i-1", "sentence_id": 4, "text": "t"}));
        let [v2] = <[Event; 1]>::try_from(InterviewUpcasters::upcast(v1).unwrap()).unwrap();
        let data: Value = serde_json::from_str(&v2.data).unwrap();
        assert_eq!(v2.schema_version, 2);
        assert_eq!(data["index"], 4);
        assert_eq!(data["text"], "t");
        let expected = Uuid::new_v5(&Uuid::NAMESPACE_DNS, b"i-1:4").to_string();
        assert_eq!(data["sentence_id"], expected.as_str());
    }

    #[test]
    fn a_non_integer_sentence_id_is_refused() {
        let bad = event("SentenceCreated", "Sentence-x", 0, json!({"interview_id": "i", "sentence_id": "x"}));
        assert!(InterviewUpcasters::upcast(bad).unwrap_err().contains("sentence_id"));
    }
}
