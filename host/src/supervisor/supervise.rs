//! The supervisor's loop: it starts the projections a host was started
//! with, then takes [`Change`]s while they run, until the host stops (or,
//! for `run` without `--follow`, until every projection has caught up).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::{Scope, ScopedJoinHandle};

use anyhow::Result;

use super::runner::{self, Ended, Loaded, Started};
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
    /// Whom to answer when it has stopped, if it was taken away.
    removed: Option<Sender<Result<String, String>>>,
}

/// Runs `initial` (in name order: two hosts with the same projections take
/// their leases in one order, so neither holds one the other waits for) and
/// the projections `changes` add, each reading the source `open` gives it,
/// until `until` or `stop`. When one fails, the others are stopped. A
/// projection that cannot start at the host's start fails the host.
pub fn supervise(cx: &Context, initial: Vec<Loaded>, open: &Opener, until: Until, stop: &AtomicBool, changes: &Receiver<Change>) -> Result<Vec<Ended>> {
    std::thread::scope(|scope| {
        let mut running = Vec::new();
        let mut ended = Vec::new();
        for loaded in initial {
            let name = loaded.name().to_owned();
            let started = open(&loaded.plugin).and_then(|source| runner::start(cx, loaded, source, cx.wait_for_lease, stop));
            match started {
                Ok(Some(started)) => running.push(spawn(scope, started, until, stop)),
                // Stopped while waiting for its lease: it does not start.
                Ok(None) => cx.desk.close(&name),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    for r in running {
                        r.stop.store(true, Ordering::Relaxed);
                        let _ = r.thread.join();
                    }
                    return Err(e);
                }
            }
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                running.iter().for_each(|r| r.stop.store(true, Ordering::Relaxed));
            }
            while let Some(at) = running.iter().position(|r| r.thread.is_finished()) {
                let end = reap(cx, running.swap_remove(at));
                if end.routed.is_err() || end.finished.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                ended.push(end);
            }
            if running.is_empty() && (until == Until::CaughtUp || stop.load(Ordering::Relaxed)) {
                return Ok(ended);
            }
            match changes.recv_timeout(TICK) {
                Ok(Change::Add(plugin, answer)) => {
                    let added = add(cx, scope, &running, &plugin, open, until, stop);
                    let said = added.map(|r| {
                        let said = format!("{} {}: started", r.name, plugin.manifest.version);
                        running.push(r);
                        said
                    });
                    let _ = answer.send(said.map_err(|e| format!("{}: {e:#}", plugin.name())));
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

fn spawn<'scope, 'env>(scope: &'scope Scope<'scope, 'env>, started: Started<'env>, until: Until, host_stop: &'env AtomicBool) -> Running<'scope> {
    let name = started.name().to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let own = stop.clone();
    let thread = std::thread::Builder::new()
        .name(format!("{name}-router"))
        .spawn_scoped(scope, move || runner::run(started, until, &own, host_stop))
        .expect("a thread for a projection's router");
    Running { name, stop, thread, removed: None }
}

/// Starts a projection in the running host, beside the others.
fn add<'scope, 'env>(
    cx: &'env Context,
    scope: &'scope Scope<'scope, 'env>,
    running: &[Running],
    plugin: &Arc<ProjectionPlugin>,
    open: &'env Opener,
    until: Until,
    stop: &'env AtomicBool,
) -> Result<Running<'scope>> {
    let name = plugin.name();
    if running.iter().any(|r| r.name == name) {
        anyhow::bail!("it runs already");
    }
    let loaded = Loaded::new(cx, plugin)?;
    cx.roster.join(loaded.member(cx));
    cx.desk.open(name);
    // Never waits for a lease another host holds: the answer says who holds it.
    let started = open(plugin).and_then(|source| runner::start(cx, loaded, source, false, stop));
    match started {
        Ok(Some(started)) => {
            tracing::info!(projection = name, from = started.resumed_from(), "a projection was added to the running host");
            Ok(spawn(scope, started, until, stop))
        }
        Ok(None) => {
            cx.desk.close(name);
            anyhow::bail!("the host is stopping")
        }
        Err(e) => {
            cx.desk.close(name);
            cx.roster.leave(name);
            Err(e)
        }
    }
}

/// What became of a runner that has stopped; one that was taken away leaves the roster.
fn reap(cx: &Context, r: Running) -> Ended {
    let ended = r.thread.join().unwrap_or_else(|_| Ended {
        name: r.name.clone(),
        routed: Err(anyhow::anyhow!("the router thread of projection {} panicked", r.name)),
        finished: Ok(0),
        quarantined: None,
    });
    if let Some(answer) = r.removed {
        cx.roster.leave(&r.name);
        let said = match &ended.finished {
            Ok(checkpoint) => Ok(format!("{}: stopped at checkpoint {checkpoint}; its read model, checkpoint and parked events are kept", r.name)),
            Err(e) => Err(format!("{}: its lanes did not stop cleanly: {e:#}", r.name)),
        };
        let _ = answer.send(said);
    }
    ended
}
