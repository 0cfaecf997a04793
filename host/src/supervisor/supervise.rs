//! The supervisor's loop: it starts a runner for each projection a host
//! was started with, then takes [`Change`]s while they run, until the host
//! stops (or, for `run` without `--follow`, until every projection has
//! caught up). Runners start on their own threads, so the loop never waits
//! on a source, a sink or a lease: the host's stop reaches every runner
//! within [`TICK`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{Scope, ScopedJoinHandle};

use anyhow::Result;

use super::runner::{self, Answer, Ended, Loaded};
use super::{Change, Context, TICK};
use crate::plugins::ProjectionPlugin;
use crate::router::Until;
use crate::source::Source;

/// Opens one projection's own reading of the source.
pub type Opener<'a> = dyn Fn(&ProjectionPlugin) -> Result<Box<dyn Source + 'a>> + Sync + 'a;

/// A runner's thread, and what it is told.
struct Running<'scope> {
    name: String,
    /// Set to stop this projection alone (or with the host).
    stop: Arc<AtomicBool>,
    thread: ScopedJoinHandle<'scope, Ended>,
    /// Added while the host ran: if it cannot start, the host runs on without it.
    added: bool,
    /// Whom to answer when it has stopped, if it was taken away.
    removed: Option<Answer>,
}

/// Runs `initial` and the projections `changes` add, each reading the
/// source `open` gives it, until `until` or `stop`. When one fails, the
/// others are stopped; a projection that cannot start at the host's start
/// fails the host. Returns what became of each, but for those taken away.
pub fn supervise(cx: &Context, initial: Vec<Loaded>, open: &Opener, until: Until, stop: &AtomicBool, changes: &Receiver<Change>) -> Result<Vec<Ended>> {
    std::thread::scope(|scope| {
        let mut running = Vec::new();
        let mut ended = Vec::new();
        for loaded in initial {
            running.push(spawn(cx, scope, loaded, open, until, None)?);
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                running.iter().for_each(|r| r.stop.store(true, Ordering::Relaxed));
            }
            while let Some(at) = running.iter().position(|r| r.thread.is_finished()) {
                if let Some(end) = reap(cx, running.swap_remove(at), stop) {
                    ended.push(end);
                }
            }
            if running.is_empty() && (until == Until::CaughtUp || stop.load(Ordering::Relaxed)) {
                return Ok(ended);
            }
            match changes.recv_timeout(TICK) {
                Ok(Change::Add(plugin, answer)) => {
                    if let Some(r) = add(cx, scope, &running, &plugin, open, until, answer) {
                        running.push(r);
                    }
                }
                Ok(Change::Remove(name, answer)) => match running.iter_mut().find(|r| r.name == name) {
                    Some(r) => {
                        tracing::info!(projection = %name, "its component was taken away; stopping it, its read model kept");
                        r.stop.store(true, Ordering::Relaxed);
                        r.removed = Some(answer);
                    }
                    None => {
                        let _ = answer.send(Err(format!("{name}: not running in this host")));
                    }
                },
                Err(RecvTimeoutError::Timeout) => {}
                // Nobody can ask for changes any more: the loop only watches.
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(TICK),
            }
        }
    })
}

/// Starts a runner's thread; `answer`, for a projection added while the host runs.
fn spawn<'scope, 'env>(
    cx: &'env Context,
    scope: &'scope Scope<'scope, 'env>,
    loaded: Loaded,
    open: &'env Opener,
    until: Until,
    answer: Option<Answer>,
) -> Result<Running<'scope>> {
    let name = loaded.name().to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let own = stop.clone();
    let added = answer.is_some();
    let thread = std::thread::Builder::new()
        .name(format!("{name}-router"))
        .spawn_scoped(scope, move || runner::run(cx, loaded, open, until, &own, answer))
        .map_err(|e| anyhow::anyhow!("no thread for projection {name}'s router: {e}"))?;
    Ok(Running { name, stop, thread, added, removed: None })
}

/// Starts a projection in the running host, beside the others; its runner
/// answers once it has started, or could not.
fn add<'scope, 'env>(
    cx: &'env Context,
    scope: &'scope Scope<'scope, 'env>,
    running: &[Running],
    plugin: &Arc<ProjectionPlugin>,
    open: &'env Opener,
    until: Until,
    answer: Answer,
) -> Option<Running<'scope>> {
    let name = plugin.name();
    let refuse = |why: String| {
        let _ = answer.send(Err(format!("{name}: {why}")));
        None
    };
    if running.iter().any(|r| r.name == name) {
        return refuse("it runs already (or is still stopping)".into());
    }
    let loaded = match Loaded::new(cx, plugin) {
        Ok(loaded) => loaded,
        Err(e) => return refuse(format!("{e:#}")),
    };
    cx.roster.join(loaded.member(cx));
    cx.desk.open(name);
    match spawn(cx, scope, loaded, open, until, Some(answer.clone())) {
        Ok(r) => {
            tracing::info!(projection = name, "a projection was added to the running host");
            Some(r)
        }
        Err(e) => {
            cx.roster.leave(name);
            cx.desk.close(name);
            refuse(format!("{e:#}"))
        }
    }
}

/// What became of a runner that has stopped. One taken away leaves the
/// roster, is answered and is not reported; one added that could not start
/// leaves the roster (its asker was told why). Any other failure stops the host.
fn reap(cx: &Context, r: Running, stop: &AtomicBool) -> Option<Ended> {
    let ended = r.thread.join().unwrap_or_else(|_| Ended {
        name: r.name.clone(),
        started: true,
        routed: Err(anyhow::anyhow!("the router thread of projection {} panicked", r.name)),
        finished: Ok(0),
        quarantined: None,
    });
    if let Some(answer) = r.removed {
        cx.roster.leave(&r.name);
        let said = match (&ended.routed, &ended.finished) {
            (Ok(_), Ok(checkpoint)) => Ok(format!("{}: stopped at checkpoint {checkpoint}; its read model, checkpoint and parked events are kept", r.name)),
            (Err(e), _) | (_, Err(e)) => Err(format!("{}: stopped, but not cleanly: {e:#}", r.name)),
        };
        let _ = answer.send(said);
        return None;
    }
    if r.added && !ended.started {
        cx.roster.leave(&r.name);
        if let Err(e) = &ended.routed {
            tracing::warn!(projection = %r.name, error = %format!("{e:#}"), "a projection added to the running host did not start");
        }
        return None;
    }
    if ended.failed() {
        stop.store(true, Ordering::Relaxed);
    }
    Some(ended)
}
