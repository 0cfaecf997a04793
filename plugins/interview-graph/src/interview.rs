//! Interview events: the Project and Interview nodes.

use projector_sdk::*;

use crate::events::{InterviewCreated, InterviewMetadataUpdated, InterviewStatusChanged};

pub fn created(event: &Event) -> Outcome {
    let e: InterviewCreated = event.data()?;
    Ok(vec![
        merge_node("Project", &e.project_id).into(),
        merge_node("Interview", &e.interview_id)
            .set("title", e.title)
            .set("source", e.source)
            .set("language", e.language)
            .set("status", e.status.unwrap_or_else(|| "created".into()))
            .set("project_id", &e.project_id)
            .into(),
        merge_edge(node("Project", e.project_id), "CONTAINS_INTERVIEW", node("Interview", e.interview_id))
            .into(),
    ])
}

pub fn metadata_updated(event: &Event) -> Outcome {
    let e: InterviewMetadataUpdated = event.data()?;
    let mut interview = merge_node("Interview", e.interview_id);
    for (name, value) in [("title", e.title), ("source", e.source), ("language", e.language)] {
        if let Some(value) = value {
            interview = interview.set(name, value);
        }
    }
    Ok(vec![interview.into()])
}

pub fn status_changed(event: &Event) -> Outcome {
    let e: InterviewStatusChanged = event.data()?;
    Ok(vec![merge_node("Interview", e.interview_id).set("status", e.status).into()])
}
