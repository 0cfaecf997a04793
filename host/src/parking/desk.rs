//! The desk: where the admin endpoint hands a running host's parked events
//! to replay or discard. A running projection's lanes are what holds its
//! read model's lease and its keys' order, so its own router does the work:
//! it stops its lanes, resolves the event, and starts them again from the
//! checkpoint (as after a quarantine), while the other projections flow.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Result};

use super::{replay, Handling, Resolution, Which};
use crate::plugins::Plugins;
use crate::sink::lease::Lease;
use crate::sink::{Resolved, Sink};

/// How long a request waits for its projection's router to take it up
/// (the router looks between two reads of its source).
pub const TAKE_UP_WAIT: Duration = Duration::from_secs(30);

/// What to do with one parked event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Handle it again, and the events parked behind it.
    Replay(i64),
    /// Set it aside for good, with why.
    Discard(i64, String),
}

/// A job and where its answer goes.
pub struct Ticket {
    pub job: Job,
    serial: u64,
    answer: Sender<Result<String, String>>,
}

impl Ticket {
    /// Sends what became of the job to whoever asked.
    pub fn answer(self, done: Result<String>) {
        let _ = self.answer.send(done.map_err(|e| format!("{e:#}")));
    }
}

#[derive(Default)]
struct Queues {
    /// Jobs waiting, by projection; a projection whose router stopped has none.
    waiting: HashMap<String, VecDeque<Ticket>>,
    next_serial: u64,
}

#[derive(Default)]
pub struct Desk {
    queues: Mutex<Queues>,
    /// One job at a time, in the whole host: each pauses a projection.
    busy: Mutex<()>,
}

impl Desk {
    /// A desk for the projections whose routers will look at it.
    pub fn new<'a>(projections: impl IntoIterator<Item = &'a str>) -> Arc<Self> {
        let waiting = projections.into_iter().map(|p| (p.to_owned(), VecDeque::new())).collect();
        Arc::new(Self { queues: Mutex::new(Queues { waiting, next_serial: 0 }), busy: Mutex::new(()) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands `job` to `projection`'s router and waits for what became of it.
    pub fn ask(&self, projection: &str, job: Job) -> Result<String> {
        let Ok(_one_at_a_time) = self.busy.try_lock() else {
            bail!("another replay or discard is under way in this host: try again when it is done");
        };
        let (answer, answered): (_, Receiver<Result<String, String>>) = channel();
        let serial = {
            let mut queues = self.lock();
            queues.next_serial += 1;
            let serial = queues.next_serial;
            let Some(queue) = queues.waiting.get_mut(projection) else {
                bail!("projection {projection} does not run in this host now: stop the host and use `projector parked` instead");
            };
            queue.push_back(Ticket { job, serial, answer });
            serial
        };
        match answered.recv_timeout(TAKE_UP_WAIT) {
            Ok(done) => done.map_err(anyhow::Error::msg),
            Err(RecvTimeoutError::Timeout) => {
                let mut queues = self.lock();
                if let Some(queue) = queues.waiting.get_mut(projection) {
                    let before = queue.len();
                    queue.retain(|t| t.serial != serial);
                    if queue.len() < before {
                        bail!("projection {projection} did not take up the request within {TAKE_UP_WAIT:?} (its router is busy reading): nothing was done; try again");
                    }
                }
                drop(queues);
                // Taken up: it is being done.
                answered.recv().map_err(|_| anyhow::anyhow!("projection {projection} stopped while it did the request"))?.map_err(anyhow::Error::msg)
            }
            Err(RecvTimeoutError::Disconnected) => bail!("projection {projection} stopped before it did the request"),
        }
    }

    /// The next job for `projection`, if one waits.
    pub fn take(&self, projection: &str) -> Option<Ticket> {
        self.lock().waiting.get_mut(projection)?.pop_front()
    }

    /// Takes requests for `projection`, a projection started in a running host.
    pub fn open(&self, projection: &str) {
        self.lock().waiting.entry(projection.to_owned()).or_default();
    }

    /// `projection`'s router stopped: what waits for it is refused, and nothing more is taken.
    pub fn close(&self, projection: &str) {
        let waiting = self.lock().waiting.remove(projection);
        for ticket in waiting.into_iter().flatten() {
            ticket.answer(Err(anyhow::anyhow!("projection {projection} stopped before it did the request")));
        }
    }
}

/// Whether `job` can be done for `projection`: its event waits, and the
/// projection holds its read model's lease (a projection read through a
/// group holds none, and the group's other members would go on parking
/// the key: replay those with `projector parked replay`).
pub fn check(job: &Job, projection: &str, sink: &dyn Sink, lease: Option<&Lease>) -> Result<()> {
    if lease.is_none() {
        bail!("projection {projection} reads through a persistent-subscription group, whose other members go on while this host pauses: use `projector parked replay` or `discard` for its parked events");
    }
    if !sink.parked(Some(projection))?.iter().any(|p| p.id == job.id() && p.status == "parked") {
        bail!("projection {projection} has no parked event #{} waiting", job.id());
    }
    Ok(())
}

/// Does `job` for the projection `plugins` holds, under `lease` (its read
/// model's, held by this host). The caller has [`check`]ed it and stopped
/// the projection's lanes.
pub fn resolve(job: &Job, plugins: &Plugins, sink: &Arc<dyn Sink>, lease: Arc<Lease>, handling: Handling) -> Result<String> {
    let projection = plugins.projections[0].name().to_owned();
    let record = sink.parked(Some(&projection))?.into_iter().find(|p| p.id == job.id() && p.status == "parked");
    let Some(record) = record else { bail!("projection {projection} has no parked event #{} waiting", job.id()) };
    match job {
        Job::Replay(id) => {
            let report = replay(plugins, sink.as_ref(), Which::One(*id), &|_| handling, &|_| Ok(lease.clone()))?;
            let mut line = format!("replayed {} events; {} still parked", report.replayed, report.still_parked);
            for failure in &report.failures {
                line.push_str(&format!("; {failure}"));
            }
            Ok(line)
        }
        Job::Discard(id, reason) => {
            let resolved = Resolved { projection: &projection, id: *id, resolution: Resolution::Discarded, note: Some(reason), applied: None, lease: Some(lease.token()) };
            sink.resolve_parked(&resolved).map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(format!("discarded #{id} ({} {}@{}): {reason}", record.event_type, record.stream, record.revision))
        }
    }
}

/// Closes a projection's desk when dropped: its router stopped.
pub struct Closing(pub Arc<Desk>, pub String);

impl Drop for Closing {
    fn drop(&mut self) {
        self.0.close(&self.1);
    }
}

impl Job {
    /// The parked event's id.
    pub fn id(&self) -> i64 {
        match self {
            Job::Replay(id) | Job::Discard(id, _) => *id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_answered_by_the_router_that_takes_it_and_refused_once_it_stopped() {
        let desk = Desk::new(["graph"]);
        let router = {
            let desk = desk.clone();
            std::thread::spawn(move || loop {
                if let Some(ticket) = desk.take("graph") {
                    let done = format!("did {:?}", ticket.job);
                    ticket.answer(Ok(done));
                    desk.close("graph");
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            })
        };
        assert_eq!(desk.ask("graph", Job::Replay(7)).unwrap(), "did Replay(7)");
        router.join().unwrap();
        let refused = desk.ask("graph", Job::Discard(7, "why".into())).unwrap_err().to_string();
        assert!(refused.contains("does not run in this host"), "{refused}");
        assert!(desk.ask("other", Job::Replay(1)).is_err());
    }
}
