//! Sample data: a seeded generator of interview-analyzer events with the
//! original envelope. The same seed and size always give the same events.
//!
//! Interviews are worked on a few at a time, so their events interleave in the
//! log as they would in production. Half the interviews are "legacy": their
//! SentenceCreated and AnalysisGenerated events are schema version 1, with the
//! sentence's index as an integer `sentence_id`.

use std::collections::VecDeque;
use std::time::{Duration, UNIX_EPOCH};

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use uuid::Uuid;

/// Interviews in progress at once.
const CONCURRENT_INTERVIEWS: usize = 8;
/// When the first sample event happened (2025-10-21T00:00:00Z).
const EPOCH_SECONDS: u64 = 1_761_004_800;

const WORDS: &[&str] = &[
    "pricing", "onboarding", "latency", "dashboard", "export", "invoice", "support", "mobile", "search",
    "billing", "security", "report", "integration", "workflow", "alerts", "storage", "api", "roles",
    "audit", "import", "calendar", "sync", "offline", "trial", "upgrade", "feedback", "tutorial",
    "checkout", "refund", "permissions",
];
const TOPICS: &[&str] = &[
    "usability", "performance", "cost", "reliability", "collaboration", "compliance", "learning curve",
    "data quality", "customer support", "automation",
];
const DOMAIN: &[&str] = &["saas", "fintech", "healthcare", "logistics", "retail", "education", "hr", "insurance"];
const FUNCTIONS: &[&str] = &["declarative", "interrogative", "imperative", "exclamatory"];
const STRUCTURES: &[&str] = &["simple", "compound", "complex", "compound-complex"];
const PURPOSES: &[&str] = &["statement", "question", "request", "opinion", "complaint", "suggestion"];
const USERS: &[&str] = &["ana", "ben", "chen", "dara", "eli"];
const PROJECTS: usize = 6;

/// The generator; an iterator of events as JSON objects ready for `import`.
pub struct Sample {
    rng: ChaCha8Rng,
    left: u64,
    clock: u64,
    projects: Vec<String>,
    active: Vec<VecDeque<Value>>,
}

impl Sample {
    pub fn new(events: u64, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let projects = (0..PROJECTS).map(|_| uuid(&mut rng)).collect();
        Self { rng, left: events, clock: 0, projects, active: Vec::new() }
    }

    fn interview(&mut self) -> VecDeque<Value> {
        let rng = &mut self.rng;
        let interview_id = uuid(rng);
        let correlation = uuid(rng);
        let project = self.projects.choose(rng).expect("projects").clone();
        let legacy = rng.random_bool(0.5);
        let sentences = rng.random_range(3..=12u32);
        let mut plan = Plan { events: VecDeque::new(), correlation, previous: None };
        let stream = format!("Interview-{interview_id}");
        let title = format!("interview-{}.txt", &interview_id[..8]);
        plan.push(&stream, "InterviewCreated", 1, json!({
            "interview_id": interview_id, "project_id": project, "title": title,
            "source": format!("uploads/{title}"), "language": "en", "status": "processing",
        }), system());
        for index in 0..sentences {
            let sentence_id = sentence_uuid(&interview_id, index);
            let s_stream = format!("Sentence-{sentence_id}");
            let id_field = if legacy { json!(index) } else { json!(sentence_id) };
            let mut created = json!({"interview_id": interview_id, "sentence_id": id_field, "text": sentence(rng), "speaker": format!("speaker-{}", rng.random_range(1..=2))});
            if !legacy {
                created["index"] = json!(index);
            }
            plan.push(&s_stream, "SentenceCreated", if legacy { 1 } else { 2 }, created, system());
            if rng.random_bool(0.9) {
                let mut analysis = analysis(rng, &interview_id, id_field.clone());
                analysis["model"] = json!("gpt-4");
                analysis["model_version"] = json!("1.0");
                analysis["confidence"] = json!((rng.random_range(50..100) as f64) / 100.0);
                plan.push(&s_stream, "AnalysisGenerated", if legacy { 1 } else { 2 }, analysis, system());
                if rng.random_bool(0.15) {
                    let mut over = json!({"interview_id": interview_id, "sentence_id": sentence_id, "note": "corrected by reviewer"});
                    if rng.random_bool(0.5) {
                        over["keywords"] = json!(pick(rng, WORDS, 1..=3));
                    } else {
                        over["classification"] = classification(rng);
                    }
                    plan.push(&s_stream, "AnalysisOverridden", 1, over, user(rng));
                } else if rng.random_bool(0.04) {
                    plan.push(&s_stream, "AnalysisCleared", 1, json!({"interview_id": interview_id, "sentence_id": sentence_id}), user(rng));
                }
            }
            if rng.random_bool(0.1) {
                let edit = json!({"interview_id": interview_id, "sentence_id": sentence_id, "new_text": sentence(rng)});
                plan.push(&s_stream, "SentenceEdited", 1, edit, user(rng));
            }
        }
        if rng.random_bool(0.3) {
            plan.push(&stream, "InterviewMetadataUpdated", 1, json!({"interview_id": interview_id, "title": format!("{title} (reviewed)")}), user(rng));
        }
        plan.push(&stream, "InterviewStatusChanged", 1, json!({"interview_id": interview_id, "status": "completed"}), system());
        plan.events
    }
}

impl Iterator for Sample {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        if self.left == 0 {
            return None;
        }
        while self.active.len() < CONCURRENT_INTERVIEWS {
            let next = self.interview();
            self.active.push(next);
        }
        let i = self.rng.random_range(0..self.active.len());
        let mut event = self.active[i].pop_front().expect("active interviews have events");
        if self.active[i].is_empty() {
            self.active.swap_remove(i);
        }
        self.clock += self.rng.random_range(1..=3);
        let at = UNIX_EPOCH + Duration::from_secs(EPOCH_SECONDS + self.clock);
        event["metadata"]["occurred_at"] = json!(humantime::format_rfc3339_seconds(at).to_string());
        event["id"] = json!(uuid(&mut self.rng));
        self.left -= 1;
        Some(event)
    }
}

/// An interview's events in order, with the envelope's causation chain.
struct Plan {
    events: VecDeque<Value>,
    correlation: String,
    previous: Option<usize>,
}

impl Plan {
    fn push(&mut self, stream: &str, event_type: &str, version: u32, data: Value, actor: Value) {
        let causation = self.previous.map(|i| json!(format!("{}#{i}", self.correlation)));
        self.previous = Some(self.events.len());
        self.events.push_back(json!({
            "stream": stream, "type": event_type, "schema_version": version, "data": data,
            "metadata": {"actor": actor, "correlation_id": self.correlation, "causation_id": causation, "source": "sample"},
        }));
    }
}

/// The id the event store gives the sentence at `index` of an interview.
pub fn sentence_uuid(interview_id: &str, index: u32) -> String {
    Uuid::new_v5(&Uuid::NAMESPACE_DNS, format!("{interview_id}:{index}").as_bytes()).to_string()
}

fn uuid(rng: &mut ChaCha8Rng) -> String {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid().to_string()
}

fn system() -> Value {
    json!({"actor_type": "system", "user_id": "pipeline"})
}

fn user(rng: &mut ChaCha8Rng) -> Value {
    json!({"actor_type": "user", "user_id": USERS.choose(rng).expect("users")})
}

fn pick(rng: &mut ChaCha8Rng, from: &[&str], count: std::ops::RangeInclusive<usize>) -> Vec<String> {
    let n = rng.random_range(count);
    from.choose_multiple(rng, n).map(|s| (*s).to_owned()).collect()
}

fn sentence(rng: &mut ChaCha8Rng) -> String {
    let words = pick(rng, WORDS, 4..=9);
    format!("We talked about {}.", words.join(" and "))
}

fn classification(rng: &mut ChaCha8Rng) -> Value {
    json!({
        "function_type": FUNCTIONS.choose(rng),
        "structure_type": STRUCTURES.choose(rng),
        "purpose": PURPOSES.choose(rng),
    })
}

fn analysis(rng: &mut ChaCha8Rng, interview_id: &str, sentence_id: Value) -> Value {
    json!({
        "interview_id": interview_id,
        "sentence_id": sentence_id,
        "classification": classification(rng),
        "keywords": pick(rng, WORDS, 1..=4),
        "topics": pick(rng, TOPICS, 1..=2),
        "domain_keywords": pick(rng, DOMAIN, 0..=2),
    })
}

#[cfg(test)]
mod tests {
    use super::Sample;

    #[test]
    fn the_same_seed_gives_the_same_events() {
        let a: Vec<_> = Sample::new(300, 7).collect();
        assert_eq!(a, Sample::new(300, 7).collect::<Vec<_>>());
        assert_ne!(a, Sample::new(300, 8).collect::<Vec<_>>());
        assert_eq!(a.len(), 300);
    }
}
