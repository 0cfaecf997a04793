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

use crate::support::{event, Workspace};

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
}

impl Stand {
    fn new(log: Vec<Event>) -> Self {
        let (settler, settlements) = mpsc::unbounded_channel();
        Self { log, next: 0, again: VecDeque::new(), ledger: Ledger::default(), settler, settlements, verdicts: BTreeMap::new(), deliveries: 0 }
    }
}

impl Source for Stand {
    fn read(&mut self, _from: u64, max: usize) -> anyhow::Result<Vec<Event>> {
        while let Ok(settled) = self.settlements.try_recv() {
            if let Some(verdict) = self.ledger.settle(settled) {
                let (Verdict::Confirm(i) | Verdict::Park(i, _)) = verdict.clone();
                let first = !self.verdicts.contains_key(&i);
                self.verdicts.entry(i).or_default().push(verdict);
                // Every fifth confirmation is lost: the server delivers the event again.
                if first && i % 5 == 0 {
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
    let sink: Arc<dyn Sink> = Arc::from(grouped.graph());
    // One projection: the stand is its source.
    let lent = Mutex::new(Some(&mut stand));
    let open = |_: &_| Ok(Box::new(lent.lock().unwrap().take().expect("one projection")) as Box<dyn Source + '_>);
    let report = run_with(&grouped.config, &grouped.plugins(), &open, sink, Until::CaughtUp, &AtomicBool::new(false), Arc::default()).unwrap();
    drop(lent);

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
            }
        }
    }
}
