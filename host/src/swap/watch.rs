//! The watcher: polls the plugins directory and reloads when a component file
//! changed and then stayed the same for one more poll (so a file still being
//! written is not loaded half-way; copying a new build in and renaming it over
//! the old one is safest).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::Swapper;

/// How often the plugins directory is looked at.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

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
            while let Err(RecvTimeoutError::Timeout) = stopping.recv_timeout(WATCH_INTERVAL) {
                let now = snapshot(&dir);
                let settled = now == seen;
                seen = now;
                if !settled || seen == loaded {
                    continue;
                }
                loaded = seen.clone();
                tracing::info!(dir = %dir.display(), "plugins changed; reloading");
                match swapper.reload(None) {
                    Ok(report) => {
                        for refused in &report.refused {
                            tracing::warn!(refused = %refused, "a plugin was not swapped in");
                        }
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
