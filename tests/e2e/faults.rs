//! Faults injected between the workers and a real embedded sink: a sink that
//! refuses to record parked events, and a commit that panics. Neither may lose
//! an event or end a run as if it had succeeded.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use projector::app::run_with;
use projector::parking::ParkedRecord;
use projector::plugins::WriteScope;
use projector::router::Until;
use projector::sink::lease::{Claim, Taken};
use projector::sink::{Commit, GraphStats, ProjectionState, Resolved, Sink, SinkError};
use serde_json::json;

use crate::support::{event, Workspace};

/// What the faulty sink does to a commit.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// Refuses every commit that records parked events.
    RefuseParked,
    /// Panics in the first commit that applies something.
    Panic,
}

/// The workspace's embedded graph, with a fault.
struct Faulty {
    inner: Box<dyn Sink>,
    fault: Fault,
    panics: AtomicU32,
}

impl Sink for Faulty {
    fn prepare(&self, projection: &str, scope: &WriteScope) -> anyhow::Result<ProjectionState> {
        self.inner.prepare(projection, scope)
    }
    fn guard(&self, projection: &str, key: &str) -> Result<Option<projector::sink::Identity>, SinkError> {
        self.inner.guard(projection, key)
    }
    fn commit(&self, commit: &Commit) -> Result<(), SinkError> {
        match self.fault {
            Fault::RefuseParked if !commit.parked.is_empty() => Err(SinkError::Rejected(anyhow::anyhow!("refused on purpose"))),
            Fault::Panic if !commit.applied.is_empty() && self.panics.fetch_add(1, Ordering::Relaxed) == 0 => panic!("a commit panicked on purpose"),
            _ => self.inner.commit(commit),
        }
    }
    fn stats(&self) -> anyhow::Result<GraphStats> {
        self.inner.stats()
    }
    fn export(&self, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
        self.inner.export(out)
    }
    fn nodes(&self, label: &str, limit: usize) -> anyhow::Result<Vec<serde_json::Value>> {
        self.inner.nodes(label, limit)
    }
    fn neighbours(&self, label: &str, key: &str, limit: usize) -> anyhow::Result<Option<projector::sink::Neighbourhood>> {
        self.inner.neighbours(label, key, limit)
    }
    fn parked(&self, projection: Option<&str>) -> anyhow::Result<Vec<ParkedRecord>> {
        self.inner.parked(projection)
    }
    fn resolve_parked(&self, resolved: &Resolved) -> Result<(), SinkError> {
        self.inner.resolve_parked(resolved)
    }
    fn checkpoint(&self, projection: &str) -> anyhow::Result<u64> {
        self.inner.checkpoint(projection)
    }
    fn take_lease(&self, claim: &Claim, renew: bool) -> Result<Taken, SinkError> {
        self.inner.take_lease(claim, renew)
    }
    fn release_lease(&self, projection: &str, token: &str) -> Result<(), SinkError> {
        self.inner.release_lease(projection, token)
    }
}

fn run_faulty(ws: &Workspace, fault: Fault) -> anyhow::Result<projector::app::RunReport> {
    let sink: Arc<dyn Sink> = Arc::new(Faulty { inner: ws.graph(), fault, panics: AtomicU32::new(0) });
    run_with(&ws.config, &ws.plugins(), &|_| Ok(Box::new(ws.log())), sink, Until::CaughtUp, &AtomicBool::new(false), Arc::default())
}

fn events(ws: &Workspace) -> usize {
    let mut events = Vec::new();
    for n in 0..300 {
        let data = if n == 150 { json!({"fail": "permanent"}) } else { json!({"n": n}) };
        events.push(event(&format!("test-{}", n % 7), "Counted", 1, data));
    }
    ws.append(&events);
    events.len()
}

#[test]
fn a_sink_that_refuses_to_record_parked_events_never_lets_the_checkpoint_pass_them() {
    let ws = Workspace::new(&["recorder"]);
    let total = events(&ws);
    run_faulty(&ws, Fault::RefuseParked).unwrap();
    assert!(ws.parked().is_empty(), "the sink recorded nothing parked");
    let bad = 151; // the failing event's position
    assert!(ws.graph().checkpoint("recorder").unwrap() <= bad, "the checkpoint passed an event that was neither applied nor parked");

    // With a sink that records it, the event comes again and is parked, with its key's tail.
    let report = ws.run();
    let parked = ws.parked();
    assert_eq!(parked.first().map(|p| p.position), Some(bad), "{parked:?}");
    assert_eq!(ws.nodes("Seen").len() + parked.len(), total, "every event applied or parked: {report:?}");
}

#[test]
fn a_commit_that_panics_fails_the_run_naming_the_projection_and_loses_nothing() {
    let ws = Workspace::new(&["recorder"]);
    let total = events(&ws);
    let failed = run_faulty(&ws, Fault::Panic).expect_err("a panic in a worker fails the run");
    let message = format!("{failed:#}");
    assert!(message.contains("projection recorder") && message.contains("panicked"), "{message}");

    ws.run();
    assert_eq!(ws.nodes("Seen").len() + ws.parked().len(), total, "the next run delivers the rest");
}
