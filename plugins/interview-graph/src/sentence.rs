//! Sentence events: Sentence nodes, their order, and edits.

use projector_sdk::*;
use uuid::Uuid;

use crate::events::{SentenceCreated, SentenceEdited};

/// The id of the sentence at `index` of an interview, as the event store names it.
pub fn sentence_id(interview_id: &str, index: u32) -> String {
    Uuid::new_v5(&Uuid::NAMESPACE_DNS, format!("{interview_id}:{index}").as_bytes()).to_string()
}

pub fn created(event: &Event) -> Outcome {
    let e: SentenceCreated = event.data()?;
    let sentence = node("Sentence", &e.sentence_id);
    let mut out = vec![
        merge_node("Sentence", &e.sentence_id)
            .set("text", e.text)
            .set("index", e.index)
            .set("speaker", e.speaker)
            .set("interview_id", &e.interview_id)
            .set("edited", false)
            .into(),
        merge_edge(node("Interview", &e.interview_id), "HAS_SENTENCE", sentence.clone()).into(),
    ];
    if e.index > 0 {
        let previous = node("Sentence", sentence_id(&e.interview_id, e.index - 1));
        out.push(merge_edge(previous, "FOLLOWS", sentence).into());
    }
    Ok(out)
}

pub fn edited(event: &Event) -> Outcome {
    let e: SentenceEdited = event.data()?;
    Ok(vec![merge_node("Sentence", e.sentence_id)
        .set("text", e.new_text)
        .set("edited", true)
        .set("edited_by", event.actor())
        .into()])
}
