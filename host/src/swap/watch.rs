//! The watcher: polls the plugins directory and reloads when a component file
//! changed and then stayed the same for one more poll (so a file still being
//! written is not loaded half-way; copying a new build in and renaming it over
//! the old one is safest). A reload that refused something is tried again,
//! less and less often, while the directory stays as it is: a projection whose
//! lease another host held starts once that host lets it go.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::Swapper;

/// How often the plugins directory is looked at.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);
/// When a reload that refused something is tried again: first after this,
/// then after twice as long each time, up to [`RETRY_REFUSED_CAP`].
pub const RETRY_REFUSED_AFTER: Duration = Duration::from_secs(10);
pub const RETRY_REFUSED_CAP: Duration = Duration::from_secs(300);

type Snapshot = BTreeMap<PathBuf, (u64, Option<SystemTime>)>;

fn snapshot(dir: &Path) -> Snapshot {
    let Ok(entries) = std::fs::read_dir(dir) else { return Snapshot::new() };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "wasm"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((e.path(), (meta.len(), meta.modified().ok())))
        })
        .collect()
}

pub struct Watcher {
    /// Dropped to stop the watcher at once, not at its next poll.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    pub fn start(dir: PathBuf, swapper: Arc<Swapper>) -> std::io::Result<Self> {
        let (stop, stopping) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name("plugin-watcher".into()).spawn(move || {
            let mut loaded = snapshot(&dir);
            let mut seen = loaded.clone();
            // What the last reload refused, and when to try it again.
            let mut refused: Vec<String> = Vec::new();
            let mut retry: Option<(Instant, Duration)> = None;
            while let Err(RecvTimeoutError::Timeout) = stopping.recv_timeout(WATCH_INTERVAL) {
                let now = snapshot(&dir);
                let settled = now == seen;
                seen = now;
                let due = retry.is_some_and(|(at, _)| Instant::now() >= at);
                if !settled || (seen == loaded && !due) {
                    continue;
                }
                let changed = seen != loaded;
                loaded = seen.clone();
                if changed {
                    tracing::info!(dir = %dir.display(), "plugins changed; reloading");
                    retry = None;
                }
                match swapper.reload(None) {
                    Ok(report) if report.refused.is_empty() => {
                        (refused, retry) = (Vec::new(), None);
                    }
                    Ok(report) => {
                        // Said once; tried again quietly while it stays the same.
                        if report.refused != refused {
                            for line in &report.refused {
                                tracing::warn!(refused = %line, "a plugin was not taken up; tried again while the directory stays as it is");
                            }
                        }
                        let wait = retry.map_or(RETRY_REFUSED_AFTER, |(_, wait)| (wait * 2).min(RETRY_REFUSED_CAP));
                        (refused, retry) = (report.refused, Some((Instant::now() + wait, wait)));
                    }
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "reload failed; the running builds stay"),
                }
            }
        })?;
        Ok(Self { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
