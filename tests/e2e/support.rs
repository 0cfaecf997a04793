//! Shared set-up: the compiled plugins, a scratch workspace per test, and
//! helpers to append events, run the host and read the graph back.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Once};

use projector::app::{run_with, RunReport};
use projector::config::Config;
use projector::parking::ParkedRecord;
use projector::plugins::Plugins;
use projector::router::Until;
use projector::sink::Sink;
use projector::source::embedded::EmbeddedLog;
use projector::source::{ExpectedRevision, NewEvent};
use serde_json::Value;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the host lives in the repository").to_owned()
}

/// The compiled component of a plugin, built (once per run) from source: the
/// Rust plugins by `plugins/build.sh`, the Python and JavaScript examples
/// (`*-py`, `*-js`) by `plugins/build-lang.sh`, which installs their toolchains.
pub fn plugin(name: &str) -> PathBuf {
    static BUILD: Once = Once::new();
    static BUILD_LANG: Once = Once::new();
    let build = |script: &str| {
        let status = std::process::Command::new(repo().join(script)).status().unwrap_or_else(|e| panic!("run {script}: {e}"));
        assert!(status.success(), "{script} failed");
    };
    BUILD.call_once(|| build("plugins/build.sh"));
    if name.ends_with("-py") || name.ends_with("-js") {
        BUILD_LANG.call_once(|| build("plugins/build-lang.sh"));
    }
    let repo = repo();
    let path = ["target/plugins", "target/test-plugins", "target/examples"]
        .iter()
        .map(|dir| repo.join(dir).join(format!("{name}.wasm")))
        .find(|p| p.exists());
    path.unwrap_or_else(|| panic!("no component for plugin {name}"))
}

/// A scratch directory with its own event log, graph and plugins directory.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub config: Config,
}

impl Workspace {
    pub fn new(plugins: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let plugin_dir = dir.path().join("plugins");
        std::fs::create_dir_all(&plugin_dir).unwrap();
        for name in plugins {
            std::fs::copy(plugin(name), plugin_dir.join(format!("{name}.wasm"))).unwrap();
        }
        let config = Config {
            source: format!("embedded:{}", dir.path().join("events.db").display()),
            sink: format!("embedded:{}", dir.path().join("graph.db").display()),
            plugins: plugin_dir,
            cache: repo().join("target/test-cache"),
            // Tests run many hosts at once: only a test that asks for it gets an admin endpoint.
            admin: String::new(),
            ..Config::default()
        };
        Self { dir, config }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub fn log(&self) -> EmbeddedLog {
        EmbeddedLog::open(&self.path("events.db")).unwrap()
    }

    /// The workspace's sink: its embedded graph, or Neo4j (`crate::neo4j`).
    pub fn graph(&self) -> Box<dyn Sink> {
        projector::sink::open(&self.config.sink, &self.config.neo4j).unwrap()
    }

    pub fn append(&self, events: &[NewEvent]) {
        self.log().append(events, ExpectedRevision::Any).unwrap();
    }

    pub fn plugins(&self) -> Plugins {
        projector::app::load_plugins(&self.config).unwrap()
    }

    /// Runs every projection until caught up, in this process.
    pub fn run(&self) -> RunReport {
        let sink: Arc<dyn Sink> = Arc::from(self.graph());
        let stop = AtomicBool::new(false);
        run_with(&self.config, &self.plugins(), &|_| Ok(Box::new(self.log())), sink, Until::CaughtUp, &stop, Arc::default())
            .unwrap()
    }

    pub fn export(&self) -> String {
        let mut out = Vec::new();
        self.graph().export(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The export as a set of JSON values, for comparisons that name what differs.
    pub fn graph_set(&self) -> BTreeSet<String> {
        self.export().lines().map(str::to_owned).collect()
    }

    pub fn parked(&self) -> Vec<ParkedRecord> {
        self.graph().parked(None).unwrap()
    }

    /// The real `projector` binary, pointed at this workspace.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_projector"));
        cmd.args(args)
            .args(["--source", &self.config.source, "--sink", &self.config.sink])
            .arg("--plugins")
            .arg(&self.config.plugins)
            .args(["--admin", &self.config.admin])
            .env("PROJECTOR_CACHE", &self.config.cache)
            .env("PROJECTOR_LOG", "warn")
            .current_dir(self.dir.path());
        cmd
    }

    /// Runs the binary, requires success, and returns its standard output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{args:?}: {}{stdout}", String::from_utf8_lossy(&out.stderr));
        stdout
    }

    /// Makes the graph if needed, then holds its write lock in another
    /// connection (as another process would) until the returned one commits.
    pub fn lock_graph(&self) -> rusqlite::Connection {
        drop(self.graph());
        let blocker = rusqlite::Connection::open(self.path("graph.db")).unwrap();
        blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
        blocker
    }

    pub fn nodes(&self, label: &str) -> Vec<Value> {
        self.graph().nodes(label, usize::MAX >> 1).unwrap()
    }
}

/// An event to append.
pub fn event(stream: &str, event_type: &str, version: u32, data: Value) -> NewEvent {
    NewEvent { id: None, stream: stream.into(), event_type: event_type.into(), schema_version: version, data, metadata: serde_json::json!({}) }
}

/// The same event with an actor in its envelope.
pub fn by(mut e: NewEvent, user: &str) -> NewEvent {
    e.metadata = serde_json::json!({"actor": {"actor_type": "user", "user_id": user}});
    e
}

/// A node as a line of `graph export` prints it.
pub fn node(label: &str, key: &str, props: Value) -> String {
    serde_json::json!({"node": label, "key": key, "props": props}).to_string()
}

/// A relationship without properties as a line of `graph export` prints it.
pub fn rel(rel: &str, from: (&str, &str), to: (&str, &str)) -> String {
    serde_json::json!({"rel": rel, "from": [from.0, from.1], "to": [to.0, to.1], "props": {}}).to_string()
}

/// Sends a signal (`TERM`, `INT`, ...) to a child process.
pub fn signal(child: &std::process::Child, name: &str) {
    let status = std::process::Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill -{name} failed");
}

/// Waits until `done`, failing the test (naming `what`) after `limit`.
pub fn wait_until(what: &str, limit: std::time::Duration, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out waiting until {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A child process that is killed if the test fails before it ends, so that a
/// failing test leaves no host running.
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Says loudly that a test (or part of one) did not run, and why. Written
/// straight to stderr, past the test harness's capture, so a green run shows it.
pub fn skipped(what: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: {what}: {why} ***\n");
}
