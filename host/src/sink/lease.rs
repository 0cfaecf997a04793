//! One writer per read model. A host takes a lease on each projection's read
//! model in the sink before it runs the projection, renews it while it runs,
//! and gives it up when it stops. Every commit carries the lease's token, and
//! the sink checks it inside the commit's transaction: a host that lost its
//! lease (paused, partitioned, stopped with SIGSTOP past the lease's length)
//! can never commit over the host that took over. A second host on a held read
//! model is refused at start, naming the holder, or waits (`--wait`).
//!
//! A projection read through a persistent-subscription group takes no lease:
//! the group's members share its events by the server's assignment.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};

use super::{Sink, SinkError};

/// How long a lease lasts unless renewed (config: `lease_ms`). A host that
/// stops without giving it up (kill -9, a crash) holds up the next one this long.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// A lease is renewed when this fraction of it has passed.
const RENEW_DIVISOR: u32 = 3;

/// How often a host that waits for a held read model asks again, at most.
const WAIT_POLL: Duration = Duration::from_millis(500);

/// What a host asks the sink for.
#[derive(Debug, Clone)]
pub struct Claim {
    pub projection: String,
    /// Unique to this run of this projection: what commits are fenced by.
    pub token: String,
    /// Who holds it, for the operator: host name, process id, start time.
    pub holder: String,
    pub length: Duration,
    /// A holder known to be gone (a process of this host that no longer
    /// runs, after a kill -9 or a crash): its lease is taken over at once.
    pub replaces: Option<String>,
}

/// What the sink answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The lease is this claim's now (taken, or renewed).
    Yes,
    /// Another holder has it, for this much longer unless it renews it.
    HeldBy { holder: String, expires_in: Duration },
    /// A renewal found that another holder took the lease over (or gave it up
    /// after taking it): this claim has lost it, and must not take it again,
    /// since what it holds in memory may be stale.
    Lost { holder: String },
}

/// Milliseconds since the Unix epoch: leases expire by the hosts' clocks,
/// which must agree to within a fraction of the lease's length.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "an unnamed host".into())
}

/// What tells this boot of this machine from any other (host names repeat
/// across cloned machines and containers); empty where it cannot be known.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|b| b.trim().to_owned()).unwrap_or_default()
}

/// The holder's name for this process: `HOST pid PID (boot ID, started TIME)`.
fn holder_name() -> String {
    format!("{} pid {} (boot {}, started {})", host_name(), std::process::id(), boot_id(), crate::parking::now())
}

/// Whether `holder` names a process of this very machine and boot that no
/// longer runs. Anything less certain waits for the lease to expire.
fn is_gone(holder: &str) -> bool {
    let boot = boot_id();
    let Some((host, rest)) = holder.split_once(" pid ") else { return false };
    let Some((pid, rest)) = rest.split_once(' ') else { return false };
    let Ok(pid) = pid.parse::<u32>() else { return false };
    !boot.is_empty()
        && rest.starts_with(&format!("(boot {boot},"))
        && host == host_name()
        && pid != std::process::id()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The refusal of a lease another host holds (`Lease::take` without waiting).
#[derive(Debug)]
pub struct Held {
    pub projection: String,
    pub holder: String,
    pub expires_in: Duration,
}

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the read model of projection {} is held by {} (its lease runs {:.1} s more, renewed while it runs): stop that host, or start this one with --wait to take over when it stops; to share one projection's work between hosts, read it through a persistent-subscription group",
            self.projection,
            self.holder,
            self.expires_in.as_secs_f64()
        )
    }
}

impl std::error::Error for Held {}

/// A lease this host holds on one projection's read model, renewed by a
/// keeper thread until it is dropped, when it is given up.
pub struct Lease {
    claim: Claim,
    /// Why the lease was lost, once it was: the projection must stop.
    lost: Mutex<Option<String>>,
    lost_flag: AtomicBool,
    keeper: Mutex<Option<(Sender<()>, JoinHandle<()>)>>,
    sink: Arc<dyn Sink>,
}

impl Lease {
    /// Takes the lease on `projection`'s read model, waiting while another
    /// host holds it if `wait`, else refusing with the holder's name. An
    /// unavailable sink is waited out. `None` when `stop` was set meanwhile.
    pub fn take(sink: Arc<dyn Sink>, projection: &str, length: Duration, wait: bool, stop: &AtomicBool) -> Result<Option<Arc<Lease>>> {
        let mut claim =
            Claim { projection: projection.to_owned(), token: uuid::Uuid::new_v4().to_string(), holder: holder_name(), length, replaces: None };
        let mut said = false;
        loop {
            if stop.load(Ordering::Relaxed) {
                tracing::info!(projection, "stopped before the read model's lease was taken: the projection does not start");
                return Ok(None);
            }
            match sink.take_lease(&claim, false) {
                Ok(Taken::Yes) => break,
                // This process's own: a runner of it that gave the lease up while the sink was away.
                Ok(Taken::HeldBy { holder, .. }) if holder == claim.holder && claim.replaces.as_ref() != Some(&holder) => {
                    tracing::info!(projection, "the read model's lease is still held by this process from before; taking it again");
                    claim.replaces = Some(holder);
                    continue;
                }
                Ok(Taken::HeldBy { holder, .. }) if is_gone(&holder) && claim.replaces.as_ref() != Some(&holder) => {
                    tracing::info!(projection, holder = %holder, "the read model's lease is held by a process of this host that is gone; taking it over");
                    claim.replaces = Some(holder);
                    continue;
                }
                Ok(Taken::HeldBy { holder, expires_in }) if wait => {
                    if !said {
                        tracing::warn!(projection, holder = %holder, expires_in = ?expires_in, "the read model is held by another host; waiting until it stops or its lease expires");
                        said = true;
                    }
                }
                Ok(Taken::HeldBy { holder, expires_in }) => {
                    return Err(anyhow::Error::new(Held { projection: projection.to_owned(), holder, expires_in }))
                }
                Ok(Taken::Lost { holder }) => bail!("the lease on projection {projection} went to {holder} while it was being taken"),
                // An outage is waited out, as commits wait it out.
                Err(SinkError::Unavailable(e)) => {
                    tracing::warn!(projection, error = %format!("{e:#}"), "sink unavailable while taking the read model's lease; retrying");
                }
                Err(e) => bail!("cannot take the lease on projection {projection}'s read model: {e}"),
            }
            let until = Instant::now() + WAIT_POLL;
            while Instant::now() < until {
                if stop.load(Ordering::Relaxed) {
                    tracing::info!(projection, "stopped while waiting for the read model's lease");
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if said {
            tracing::info!(projection, "took over the read model's lease");
        }
        let lease = Arc::new(Lease { claim, lost: Mutex::new(None), lost_flag: AtomicBool::new(false), keeper: Mutex::new(None), sink });
        lease.keep();
        Ok(Some(lease))
    }

    /// What commits are fenced by.
    pub fn token(&self) -> &str {
        &self.claim.token
    }

    /// Why the lease was lost, if it was: the projection must stop without writing.
    pub fn lost(&self) -> Option<String> {
        if !self.lost_flag.load(Ordering::Acquire) {
            return None;
        }
        self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Notes that the lease was lost (`why`): said once, in the log and by `lost`.
    pub fn lose(&self, why: String) {
        let mut lost = self.lost.lock().unwrap_or_else(|p| p.into_inner());
        if lost.is_none() {
            tracing::error!(projection = %self.claim.projection, reason = %why, "lost the read model's lease: another host took over; this one stops without writing more");
            *lost = Some(why);
            self.lost_flag.store(true, Ordering::Release);
        }
    }

    /// Starts the keeper: renews the lease every third of its length.
    fn keep(self: &Arc<Self>) {
        let (stop, stopped) = mpsc::channel::<()>();
        let lease = Arc::downgrade(self);
        let every = self.claim.length / RENEW_DIVISOR;
        let name = format!("{}-lease", self.claim.projection);
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let Some(lease) = lease.upgrade() else { return };
                match lease.sink.take_lease(&lease.claim, true) {
                    Ok(Taken::Yes) => {}
                    Ok(Taken::HeldBy { holder, .. } | Taken::Lost { holder }) => {
                        lease.lose(format!("{holder} holds the lease now"));
                        return;
                    }
                    Err(e) => tracing::warn!(projection = %lease.claim.projection, error = %e, "cannot renew the read model's lease; trying again"),
                }
            }
        });
        match thread {
            Ok(thread) => *self.keeper.lock().unwrap_or_else(|p| p.into_inner()) = Some((stop, thread)),
            Err(e) => self.lose(format!("cannot start the thread that renews the lease: {e}")),
        }
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("claim", &self.claim).field("lost", &self.lost()).finish()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.keeper.lock().unwrap_or_else(|p| p.into_inner()).take() {
            drop(stop);
            // The keeper itself may hold the last reference for a moment.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
        if self.lost().is_none() {
            if let Err(e) = self.sink.release_lease(&self.claim.projection, &self.claim.token) {
                tracing::warn!(projection = %self.claim.projection, error = %e, "cannot give up the read model's lease; the next host waits until it expires");
            }
        }
    }
}
