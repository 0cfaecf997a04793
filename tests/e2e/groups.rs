//! Persistent-subscription mode, against a stand-in for the server: a source
//! that delivers like an EventStoreDB persistent subscription (events again
//! after a lost confirmation or a timeout, so out of position order) and takes
//! the host's verdicts through the same ledger the EventStoreDB source uses.
//! What it proves is the host's side: every event gets one verdict (confirmed,
//! or parked where the host parked it), and redeliveries change nothing in the
//! read model. The server's side runs in the conformance suite's way, against a
//! real server only (none runs in this build).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use projector::app::run_with;
use projector::router::Until;
use projector::sink::Sink;
use projector::source::settle::{Ledger, Settled, Settler, Verdict};
use projector::source::Source;
use projector::Event;
use serde_json::json;
use tokio::sync::mpsc;

use crate::support::{event, plugin, Workspace};

/// Delivers `log` like a persistent subscription that loses some confirmations.
struct Stand {
    log: Vec<Event>,
    next: usize,
    again: VecDeque<usize>,
    ledger: Ledger<usize>,
    settler: Settler,
    settlements: mpsc::UnboundedReceiver<Settled>,
    verdicts: BTreeMap<usize, Vec<Verdict<usize>>>,
    deliveries: usize,
    /// Deliveries of each event, and the events the stand parked itself after
    /// `MAX_DELIVERIES` without a verdict, as the server does.
    delivered: BTreeMap<usize, u32>,
    server_parked: BTreeSet<usize>,
    /// A run that never settles fails instead of hanging the suite.
    started: std::time::Instant,
}

/// How long a stand serves before it calls the run stuck.
const STUCK_AFTER: std::time::Duration = std::time::Duration::from_secs(120);

/// Deliveries without a verdict after which the stand parks an event, as the server does.
const MAX_DELIVERIES: u32 = 10;

impl Stand {
    fn new(log: Vec<Event>) -> Self {
        let (settler, settlements) = mpsc::unbounded_channel();
        Self {
            log,
            next: 0,
            again: VecDeque::new(),
            ledger: Ledger::default(),
            settler,
            settlements,
            verdicts: BTreeMap::new(),
            deliveries: 0,
            delivered: BTreeMap::new(),
            server_parked: BTreeSet::new(),
            started: std::time::Instant::now(),
        }
    }
}

impl Source for Stand {
    fn read(&mut self, _from: u64, max: usize) -> anyhow::Result<Vec<Event>> {
        if self.started.elapsed() > STUCK_AFTER {
            anyhow::bail!("stuck: after {STUCK_AFTER:?}, {} events are still in flight", self.ledger.in_flight());
        }
        while let Ok(settled) = self.settlements.try_recv() {
            if let Some(verdict) = self.ledger.settle(settled) {
                let (Verdict::Confirm(i) | Verdict::Park(i, _) | Verdict::Forget(i)) = verdict.clone();
                let first = !self.verdicts.contains_key(&i);
                let forgotten = matches!(verdict, Verdict::Forget(_));
                self.verdicts.entry(i).or_default().push(verdict);
                // Not taken: delivered again (after the message timeout), until the limit.
                if forgotten && self.delivered[&i] < MAX_DELIVERIES {
                    self.again.push_back(i);
                } else if forgotten {
                    self.server_parked.insert(i);
                }
                // Every fifth confirmation is lost: the server delivers the event again.
                if first && i % 5 == 0 && !forgotten {
                    self.again.push_back(i);
                }
            }
        }
        let mut out = Vec::new();
        while out.len() < max.min(64) {
            let i = match self.again.pop_front() {
                Some(i) => i,
                None if self.next < self.log.len() => {
                    self.next += 1;
                    // Every seventh event times out at once: delivered again while in flight.
                    if self.next % 7 == 0 {
                        self.again.push_back(self.next - 1);
                    }
                    self.next - 1
                }
                None => break,
            };
            self.deliveries += 1;
            *self.delivered.entry(i).or_default() += 1;
            if self.ledger.offer(self.log[i].position, i) {
                out.push(self.log[i].clone());
            }
        }
        if out.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(out)
    }

    fn caught_up(&self) -> bool {
        self.next == self.log.len() && self.again.is_empty() && self.ledger.in_flight() == 0
    }

    fn settler(&self) -> Option<Settler> {
        Some(self.settler.clone())
    }
}

/// Runs the workspace's one projection with the stand as its source, until caught up.
fn run_on(ws: &Workspace, stand: &mut Stand) -> projector::app::RunReport {
    let sink: Arc<dyn Sink> = Arc::from(ws.graph());
    let lent = Mutex::new(Some(stand));
    let open = |_: &_| Ok(Box::new(lent.lock().unwrap().take().expect("one projection")) as Box<dyn Source + '_>);
    run_with(&ws.config, &ws.plugins(), &open, sink, Until::CaughtUp, &AtomicBool::new(false), Arc::default()).unwrap()
}

#[test]
fn every_event_of_a_group_gets_one_verdict_and_redeliveries_change_nothing() {
    let mut events = Vec::new();
    for n in 0..15 {
        for s in 0..20 {
            let data = if (s, n) == (3, 4) || (s, n) == (11, 9) { json!({"fail": "permanent"}) } else { json!({"n": n}) };
            events.push(event(&format!("test-{s}"), "Counted", 1, data));
        }
        events.push(event(&format!("other-{n}"), "Counted", 1, json!({"n": n})));
    }
    let ordered = Workspace::new(&["recorder"]);
    ordered.append(&events);
    let expected = ordered.run();

    let grouped = Workspace::new(&["recorder"]);
    grouped.append(&events);
    let mut stand = Stand::new(ordered.log().read(0, 1_000_000).unwrap());
    let report = run_on(&grouped, &mut stand);

    assert_eq!(grouped.graph_set(), ordered.graph_set(), "the read model of a run in position order");
    println!("{} events, {} deliveries, {} skipped by their guards", stand.log.len(), stand.deliveries, report.skipped);
    assert!(stand.deliveries > stand.log.len() + 40, "the stand delivered again ({} deliveries of {} events)", stand.deliveries, stand.log.len());
    assert!(report.skipped > 0, "deliveries of committed events are skipped by their guards");
    let parked: BTreeSet<u64> = grouped.parked().iter().map(|p| p.position).collect();
    assert_eq!(parked, ordered.parked().iter().map(|p| p.position).collect(), "the same events parked");
    assert_eq!((expected.parked, parked.len()), (17, 17), "two failures and their key tails (11 + 6 events)");
    for (i, e) in stand.log.iter().enumerate() {
        let verdicts = stand.verdicts.get(&i).unwrap_or_else(|| panic!("no verdict on event {i} ({} {})", e.stream, e.revision));
        for verdict in verdicts {
            match verdict {
                Verdict::Confirm(_) => assert!(!parked.contains(&e.position), "event {i} was parked but confirmed"),
                Verdict::Park(_, reason) => assert!(parked.contains(&e.position), "event {i} parked on the server only: {reason}"),
                Verdict::Forget(_) => panic!("event {i} was not taken, but no projection is quarantined"),
            }
        }
    }
}

#[test]
fn a_quarantined_projection_of_a_group_leaves_nothing_in_flight_and_a_fixed_build_takes_up_what_it_did_not_take() {
    const EVENTS: usize = 60;
    let mut ws = Workspace::new(&["recorder"]);
    (ws.config.lanes.count, ws.config.lanes.batch_size, ws.config.lanes.quarantine_after) = (Some(2), Some(4), Some(5));
    ws.append(&(0..EVENTS).map(|i| event(&format!("test-{i}"), "Counted", 1, json!({"fail": "permanent"}))).collect::<Vec<_>>());
    let mut stand = Stand::new(ws.log().read(0, 1_000_000).unwrap());
    // The run ends: every event the quarantined projection did not take is let go.
    let report = run_on(&ws, &mut stand);
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    assert_eq!(stand.ledger.in_flight(), 0, "nothing is left in flight");
    let parked: BTreeSet<u64> = ws.parked().iter().map(|p| p.position).collect();
    assert!(!parked.is_empty() && parked.len() < EVENTS / 2, "parked until the quarantine: {}", parked.len());
    // Each event was parked by the host (before the quarantine), or, not taken,
    // parked by the server after its last delivery (a parked event the server
    // delivered again during the quarantine may be both).
    let mut not_handled = 0;
    for (i, e) in stand.log.iter().enumerate() {
        let (by_host, by_server) = (parked.contains(&e.position), stand.server_parked.contains(&i));
        assert!(by_host || by_server, "event {i} was neither handled nor parked");
        not_handled += usize::from(by_server && !by_host);
    }
    assert!(not_handled > EVENTS / 2, "most events were not taken: {not_handled}");

    // The fixed build, and the server's replay of what it parked: every such event is handled.
    std::fs::copy(plugin("recorder-healed"), ws.config.plugins.join("recorder.wasm")).unwrap();
    let again: Vec<Event> = stand.server_parked.iter().map(|&i| stand.log[i].clone()).collect();
    let mut replay = Stand::new(again.clone());
    let report = run_on(&ws, &mut replay);
    assert!(report.quarantined.is_empty(), "{report:?}");
    assert_eq!(ws.nodes("Seen").len(), not_handled, "every event the server parked is handled once it delivers it again");
    assert_eq!(ws.nodes("Seen").len() + parked.len(), EVENTS);
}
