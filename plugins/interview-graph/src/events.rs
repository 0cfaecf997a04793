//! The data of the interview events at schema version 2.

use serde::Deserialize;

#[derive(Deserialize)]
pub struct InterviewCreated {
    pub interview_id: String,
    pub project_id: String,
    pub title: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Deserialize)]
pub struct InterviewMetadataUpdated {
    pub interview_id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
}

#[derive(Deserialize)]
pub struct InterviewStatusChanged {
    pub interview_id: String,
    pub status: String,
}

#[derive(Deserialize)]
pub struct SentenceCreated {
    pub interview_id: String,
    pub sentence_id: String,
    pub index: u32,
    pub text: String,
    #[serde(default)]
    pub speaker: Option<String>,
}

#[derive(Deserialize)]
pub struct SentenceEdited {
    pub sentence_id: String,
    pub new_text: String,
}

#[derive(Deserialize)]
pub struct Classification {
    #[serde(default)]
    pub function_type: Option<String>,
    #[serde(default)]
    pub structure_type: Option<String>,
    #[serde(default)]
    pub purpose: Option<String>,
}

/// AnalysisGenerated, and AnalysisOverridden where every part is optional.
#[derive(Deserialize)]
pub struct Analysis {
    pub sentence_id: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub model_version: Option<String>,
    #[serde(default)]
    pub confidence: Option<f64>,
    #[serde(default)]
    pub classification: Option<Classification>,
    #[serde(default)]
    pub keywords: Option<Vec<String>>,
    #[serde(default)]
    pub topics: Option<Vec<String>>,
    #[serde(default)]
    pub domain_keywords: Option<Vec<String>>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Deserialize)]
pub struct AnalysisCleared {
    pub sentence_id: String,
}
