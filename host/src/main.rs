//! The `projector` command line.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use projector::config::Config;
use projector::lanes::Progress;
use projector::router::Until;
use projector::source::{self, ExpectedRevision, NewEvent};
use projector::sink::Sink;

#[derive(Parser)]
#[command(name = "projector", version, about = "A projection host for event-sourced systems: WebAssembly handlers turn events into read models.")]
#[command(long_about = "A projection host for event-sourced systems.\n\nProjector reads events from an event store, splits them into ordered lanes, runs projection and upcaster plugins (WebAssembly components) over them, and writes read models into a graph. Settings come from projector.toml (if present), then PROJECTOR_* environment variables, then flags.")]
struct Cli {
    /// Config file [default: projector.toml if it exists]
    #[arg(long, global = true, env = "PROJECTOR_CONFIG")]
    config: Option<PathBuf>,
    /// Event store URL: embedded:PATH, esdb://HOST:2113?tls=false (EventStoreDB/KurrentDB), or esdb: for the server in ESDB_CONNECTION_STRING [default: embedded:.projector/events.db]
    #[arg(long, global = true, env = "PROJECTOR_SOURCE")]
    source: Option<String>,
    /// Read model URL, e.g. embedded:.projector/graph.db
    #[arg(long, global = true, env = "PROJECTOR_SINK")]
    sink: Option<String>,
    /// Directory of plugin components (*.wasm)
    #[arg(long, global = true, env = "PROJECTOR_PLUGINS")]
    plugins: Option<PathBuf>,
    /// Directory for compiled plugins
    #[arg(long, global = true, env = "PROJECTOR_CACHE")]
    cache: Option<PathBuf>,
    /// Lanes per projection: ordering units, events of one partition key stay on one lane [default: 12]
    #[arg(long, global = true, env = "PROJECTOR_LANES")]
    lanes: Option<usize>,
    /// Worker threads per projection that run its lanes, each with its own plugin instance [default: the machine's cores]
    #[arg(long, global = true, env = "PROJECTOR_WORKERS")]
    workers: Option<usize>,
    /// Events per handler call and sink transaction [default: 256]
    #[arg(long, global = true, env = "PROJECTOR_BATCH_SIZE")]
    batch_size: Option<usize>,
    /// A running host's admin endpoint ("" for none; beyond loopback only with PROJECTOR_ADMIN_TOKEN or a token file) [default: 127.0.0.1:7931]
    #[arg(long, global = true, env = "PROJECTOR_ADMIN")]
    admin: Option<String>,
    /// How log lines are written to stderr: text, or json (one object per line, for log shippers) [default: text]
    #[arg(long, global = true, env = "PROJECTOR_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write generated interview events as JSON lines to stdout
    Sample {
        /// How many events
        #[arg(long, default_value_t = 1000)]
        events: u64,
        /// Seed: the same seed gives the same events
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Append events from a JSON-lines file ("-" for stdin) to the event store.
    /// Every line is checked before anything is written (an error names the
    /// line); into the embedded log the file goes in whole or not at all. An
    /// event without an `id` gets one made from the file's content and its
    /// line, so importing the same file again appends nothing
    Import { file: PathBuf },
    /// Append one event to the event store
    Append {
        #[arg(long)]
        stream: String,
        #[arg(long = "type")]
        event_type: String,
        /// The event's data, a JSON document
        #[arg(long)]
        data: String,
        /// The envelope, a JSON object
        #[arg(long, default_value = "{}")]
        metadata: String,
        #[arg(long, default_value_t = 1)]
        schema_version: u32,
        /// `any`, `no-stream`, or the revision the stream must be at
        #[arg(long, default_value = "any")]
        expected_revision: ExpectedRevision,
    },
    /// Project events until caught up (with --follow, keep tailing until Ctrl-C)
    Run {
        /// Keep following new events after catching up, until Ctrl-C or SIGTERM
        #[arg(long)]
        follow: bool,
        /// When another host holds a projection's read model, wait until it
        /// stops (or its lease expires) and take over, instead of refusing to start
        #[arg(long)]
        wait: bool,
        /// No progress bar
        #[arg(long)]
        quiet: bool,
    },
    /// Look at the read model
    #[command(subcommand)]
    Graph(GraphCommand),
    /// Look at the plugins, and swap builds in a running host
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Look at parked events
    #[command(subcommand)]
    Parked(ParkedCommand),
    /// Show each projection of the running host at the admin address: build,
    /// state (running, catching up, retrying N keys, quarantined, stopped),
    /// checkpoint, head, lag in events and seconds, events per second over
    /// the last minute, parked events
    Status {
        /// Print the host's answer as JSON
        #[arg(long)]
        json: bool,
        /// Refresh every --interval seconds until Ctrl-C
        #[arg(long)]
        watch: bool,
        /// Seconds between refreshes with --watch
        #[arg(long, default_value_t = 2.0, value_parser = positive_seconds)]
        interval: f64,
    },
    /// Make a new plugin to start from: a manifest, a handler, a build script
    /// and a test (a sample event and the mutations it must give), ready to
    /// build and load
    New {
        /// The plugin's name (letters, digits, `-`, `_`)
        name: String,
        /// Its language: rust (with the SDK in plugins/sdk), python
        /// (componentize-py) or js (componentize-qjs)
        #[arg(long, value_enum, default_value = "rust")]
        lang: projector::scaffold::Lang,
        /// Where to make it (inside a Projector checkout)
        #[arg(long, default_value = "plugins")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum GraphCommand {
    /// Counts of nodes per label and relationships per type
    Stats {
        /// One JSON object: {"nodes": {...}, "relationships": {...}}
        #[arg(long)]
        json: bool,
    },
    /// The whole read model as JSON lines, in a deterministic order
    Export,
    /// Nodes with a label, as JSON lines
    Nodes {
        label: String,
        #[arg(long, default_value_t = 3)]
        limit: usize,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Name, version, world and subscriptions of every plugin
    List {
        #[arg(long)]
        json: bool,
    },
    /// Handle one event with a plugin, without a store, and show the mutations
    /// (or the error) as JSON
    Try {
        /// The plugin component (*.wasm)
        file: PathBuf,
        /// A JSON file with one event, as `import` reads them ("-" for stdin)
        #[arg(long)]
        event: PathBuf,
        /// A JSON file with the mutations the event must give: exit 1 with
        /// both shown when they differ (a golden test in any language)
        #[arg(long)]
        expect: Option<PathBuf>,
    },
    #[command(flatten)]
    Swap(SwapCommand),
}

#[derive(Subcommand)]
enum SwapCommand {
    /// Ask the running host to load the plugins directory again (for NAME
    /// only, if given): new builds are swapped in at the next batch boundary
    /// (a build that fails its checks is refused and the running one stays),
    /// projections new to the directory start from their checkpoints, and
    /// those whose component is gone stop, their read models kept
    Reload { name: Option<String> },
    /// Ask the running host to return NAME to the build it ran before its last swap
    Rollback { name: String },
    /// The builds a running host runs now, and the ones before them
    Status,
}

#[derive(Subcommand)]
enum ParkedCommand {
    /// Parked events, oldest first (with --all, replayed and discarded ones too)
    List {
        #[arg(long)]
        projection: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// One parked event in full: its error, attempts and the event itself
    Show { id: i64 },
    /// Handle parked events again through the current plugin version; the
    /// events parked behind one are released in order. With --all, a projection
    /// that reads a persistent-subscription group also has the server deliver
    /// the group's parked events again
    Replay {
        /// The parked event to replay (the first failure of its key)
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        /// Replay every parked event
        #[arg(long)]
        all: bool,
        /// With --all: only this projection's
        #[arg(long, requires = "all")]
        projection: Option<String>,
        /// A replay writes to the read model, so it takes the projection's
        /// lease: while a host runs the projection it is refused (stop the
        /// host first); with --wait, it waits until that host stops
        #[arg(long)]
        wait: bool,
    },
    /// Set a parked event aside for good; the record is kept, with the reason
    Discard {
        id: i64,
        #[arg(long, default_value = "discarded by an operator")]
        reason: String,
        /// Wait for the projection's lease while a host runs it (see replay --wait)
        #[arg(long)]
        wait: bool,
    },
}

/// Sends a swap request to the running host and prints its answer; a refusal is an error.
fn swap(config: &Config, cmd: SwapCommand, out: &mut impl Write) -> Result<()> {
    use projector::admin::request;
    if config.admin.is_empty() {
        anyhow::bail!("no admin address: set `admin` in projector.toml, PROJECTOR_ADMIN or --admin to the running host's");
    }
    let (method, path) = match &cmd {
        SwapCommand::Reload { name: None } => ("POST", "/plugins/reload".to_owned()),
        SwapCommand::Reload { name: Some(n) } => ("POST", format!("/plugins/reload?name={n}")),
        SwapCommand::Rollback { name } => ("POST", format!("/plugins/rollback?name={name}")),
        SwapCommand::Status => ("GET", "/status".to_owned()),
    };
    let file = &config.admin_token_file;
    // Only a change carries the token: a read goes to whatever listens there without it.
    let token = if method == "POST" { projector::admin::access::client_token(file)? } else { None };
    if token.is_none() && method == "POST" {
        anyhow::bail!(
            "no admin token: a running host writes one to {} (mode 0600) beside its data; run this where the host runs, or set {}",
            file.display(),
            projector::admin::access::TOKEN_ENV
        );
    }
    let (status, answer) = request(&config.admin, method, &path, token.as_ref())?;
    let lines = |key: &str, prefix: &str| -> Vec<String> {
        answer[key].as_array().into_iter().flatten().filter_map(|l| l.as_str()).map(|l| format!("{prefix}{l}")).collect()
    };
    match cmd {
        SwapCommand::Status => {
            for p in answer["projections"].as_array().into_iter().flatten() {
                let previous = p["previous"].as_str().map(|v| format!(" (before: {v})")).unwrap_or_default();
                writeln!(out, "{:<22} {:<14} swaps {}{previous}  {}", p["name"].as_str().unwrap_or("?"), p["version"].as_str().unwrap_or("?"), p["swaps"], p["file"].as_str().unwrap_or(""))?;
                if let Some(why) = p["quarantined"].as_str() {
                    writeln!(out, "{:<22} QUARANTINED: {why}", "")?;
                }
            }
        }
        SwapCommand::Reload { .. } => {
            let said = [
                ("swapped", "swapped    "),
                ("started", "started    "),
                ("stopped", "stopped    "),
                ("upcasters", "upcasters  "),
                ("unchanged", "unchanged  "),
                ("refused", "refused    "),
            ];
            for line in said.iter().flat_map(|(key, prefix)| lines(key, prefix)) {
                writeln!(out, "{line}")?;
            }
        }
        SwapCommand::Rollback { .. } => {
            if let Some(line) = answer["rolled_back"].as_str() {
                writeln!(out, "{line}")?;
            }
        }
    }
    out.flush()?;
    if status != 200 {
        let why = answer["error"].as_str().map(str::to_owned).unwrap_or_else(|| "some builds were refused (see above); the running builds stay".into());
        anyhow::bail!("{why}");
    }
    Ok(())
}

/// What the running host at the admin address says of itself.
fn host_status(config: &Config) -> Result<projector::monitor::HostStatus> {
    if config.admin.is_empty() {
        anyhow::bail!("no admin address: set `admin` in projector.toml, PROJECTOR_ADMIN or --admin to the running host's");
    }
    let (code, answer) = projector::admin::request(&config.admin, "GET", "/status", None)?;
    if code != 200 {
        anyhow::bail!("the host at {} answered {code}: {}", config.admin, answer["error"].as_str().unwrap_or("no reason given"));
    }
    serde_json::from_value(answer["host"].clone())
        .with_context(|| format!("the host at {} does not tell its status: is it an older Projector?", config.admin))
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds above 0 (e.g. 2 or 0.5)")),
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() {
    let cli = Cli::parse();
    let format = match cli.log_format {
        Some(LogFormat::Json) => projector::telemetry::Format::Json,
        Some(LogFormat::Text) | None => projector::telemetry::Format::Text,
    };
    projector::telemetry::init("info", format);
    if let Err(error) = run(cli) {
        // An error may quote what a plugin, an event or a server chose.
        let error = format!("{error:#}");
        match format {
            projector::telemetry::Format::Json => tracing::error!(error = %error, "the command failed"),
            projector::telemetry::Format::Text => eprintln!("error: {}", projector::telemetry::printable(&error)),
        }
        std::process::exit(1);
    }
}

fn config(cli: &Cli) -> Result<Config> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(s) = &cli.source {
        config.source = s.clone();
    }
    if let Some(s) = &cli.sink {
        config.sink = s.clone();
    }
    if let Some(p) = &cli.plugins {
        config.plugins = p.clone();
    }
    if let Some(c) = &cli.cache {
        config.cache = c.clone();
    }
    if let Some(a) = &cli.admin {
        config.admin = a.clone();
    }
    config.lanes.count = cli.lanes.or(config.lanes.count);
    config.lanes.workers = cli.workers.or(config.lanes.workers);
    config.lanes.batch_size = cli.batch_size.or(config.lanes.batch_size);
    Ok(config)
}

fn run(cli: Cli) -> Result<()> {
    let config = config(&cli)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    match cli.command {
        Command::Sample { events, seed } => {
            for event in projector::sample::Sample::new(events, seed) {
                writeln!(out, "{event}")?;
            }
        }
        Command::Import { file } => import(&config, &file)?,
        Command::Append { stream, event_type, data, metadata, schema_version, expected_revision } => {
            let event = NewEvent {
                id: None,
                stream,
                event_type,
                schema_version,
                data: serde_json::from_str(&data).context("--data is not JSON")?,
                metadata: serde_json::from_str(&metadata).context("--metadata is not JSON")?,
            };
            let position = source::open_writer(&config.source)?.write(&[event], expected_revision)?;
            match position {
                Some(position) => writeln!(out, "appended at position {position}")?,
                None => writeln!(out, "appended; the store reported no position (it held this event already: an event with the same id)")?,
            }
        }
        Command::Run { follow, wait, quiet } => {
            let config = Config { wait_for_lease: wait || config.wait_for_lease, ..config };
            run_projections(&config, follow, quiet)?
        }
        Command::Graph(cmd) => graph(&config, cmd, &mut out)?,
        Command::Plugins(PluginsCommand::Swap(cmd)) => swap(&config, cmd, &mut out)?,
        Command::Plugins(PluginsCommand::Try { file, event, expect }) => {
            let text = if event.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&event).with_context(|| format!("cannot read {}", event.display()))?
            };
            let event: NewEvent = serde_json::from_str(&text).with_context(|| format!("{} is not an event (one JSON object, as `import` reads)", event.display()))?;
            let deadline = config.lane_settings("").call_deadline;
            let answer = projector::plugins::trial(&file, &config.cache, event, deadline)?;
            writeln!(out, "{}", serde_json::to_string_pretty(&answer)?)?;
            if let Some(expect) = expect {
                let text = std::fs::read_to_string(&expect).with_context(|| format!("cannot read {}", expect.display()))?;
                let expected: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON (a list of mutations, as `plugins try` prints them)", expect.display()))?;
                if answer.get("mutations") != Some(&expected) {
                    bail!("{} gave other mutations than {} expects:\n{}", file.display(), expect.display(), serde_json::to_string_pretty(&expected)?);
                }
                writeln!(out, "the mutations are the ones {} expects", expect.display())?;
            }
        }
        Command::New { name, lang, dir } => {
            let made = projector::scaffold::scaffold(&name, lang, &dir)?;
            writeln!(out, "made {}", made.display())?;
            writeln!(out, "next: {}/test.sh builds {name}.wasm and checks it on sample-event.json against expected.json", made.display())?;
            writeln!(out, "      then copy {name}.wasm into the plugins directory (a running host swaps it in)")?;
        }
        Command::Plugins(PluginsCommand::List { json }) => {
            let plugins = projector::app::load_plugins(&config)?;
            let list = plugins.summaries();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                for p in list {
                    writeln!(out, "{:<22} {:<8} {:<10} {}", p.name, p.version, p.world, p.subscribes.join(", "))?;
                }
            }
        }
        Command::Parked(cmd) => parked(&config, cmd, &mut out)?,
        Command::Status { json, watch, interval } => loop {
            let status = host_status(&config)?;
            if json {
                writeln!(out, "{}", serde_json::to_string(&status)?)?;
            } else {
                if watch && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                    // Clear the screen, so that the table stays in one place.
                    write!(out, "\x1b[2J\x1b[H")?;
                }
                write!(out, "{}", projector::monitor::render_table(&config.admin, &status))?;
            }
            out.flush()?;
            if !watch {
                break;
            }
            std::thread::sleep(std::time::Duration::from_secs_f64(interval));
        },
    }
    out.flush()?;
    Ok(())
}

fn import(config: &Config, file: &std::path::Path) -> Result<()> {
    let file = source::import::ImportFile::open(file)?;
    let mut log = source::open_writer(&config.source)?;
    let started = Instant::now();
    let imported = file.import(log.as_mut())?;
    let secs = started.elapsed().as_secs_f64();
    println!("imported {} events ({} already present) in {secs:.1} s", imported.appended, imported.present);
    Ok(())
}

fn run_projections(config: &Config, follow: bool, quiet: bool) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal ends the process at once.
        signal_hook::flag::register_conditional_shutdown(signal, 1, stop.clone())?;
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let progress = Arc::new(Progress::default());
    let total = source::count(&config.source)?;
    let bar = (!quiet && !follow).then(|| progress_bar(total, progress.clone()));
    let until = if follow { Until::Stopped } else { Until::CaughtUp };
    let report = projector::app::run(config, until, &stop, progress);
    if let Some((bar, done)) = bar {
        done.store(true, Ordering::Relaxed);
        let _ = bar.join();
    }
    let report = report?;
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    let memory = projector::telemetry::peak_memory()
        .map(|bytes| format!(", peak memory {} MiB", bytes >> 20))
        .unwrap_or_default();
    println!(
        "projected {} events ({} parked, {} already applied) in {secs:.2} s: {:.0} events/s{memory}",
        report.handled,
        report.parked,
        report.skipped,
        report.handled as f64 / secs
    );
    if report.parked > 0 {
        println!("see them with `projector parked list`");
    }
    if !report.quarantined.is_empty() {
        let names: Vec<String> = report.quarantined.iter().map(|(name, why)| format!("{name} ({why})")).collect();
        bail!(
            "quarantined, its checkpoint held where it stopped: {}; deploy a fixed build and run again (it resumes there), then `projector parked replay --all`",
            names.join("; ")
        );
    }
    Ok(())
}

/// A progress bar on stderr, fed from the lanes' counters.
/// A bar when the source can count its events, else a running count.
fn progress_bar(total: Option<u64>, progress: Arc<Progress>) -> (std::thread::JoinHandle<()>, Arc<AtomicBool>) {
    let done = Arc::new(AtomicBool::new(false));
    let finished = done.clone();
    let thread = std::thread::spawn(move || {
        let (bar, template) = match total {
            Some(total) => (indicatif::ProgressBar::new(total), "{bar:40} {pos}/{len} events handled  {per_sec}  eta {eta}"),
            None => (indicatif::ProgressBar::new_spinner(), "{spinner} {pos} events handled  {per_sec}"),
        };
        bar.set_style(indicatif::ProgressStyle::with_template(template).expect("a valid template"));
        while !finished.load(Ordering::Relaxed) {
            bar.set_position(progress.handled.load(Ordering::Relaxed));
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish_and_clear();
    });
    (thread, done)
}

fn parked(config: &Config, cmd: ParkedCommand, out: &mut dyn Write) -> Result<()> {
    use projector::parking::{replay, Resolution, Which};
    let sink: Arc<dyn Sink> = projector::sink::open_existing(&config.sink, &config.neo4j)?.into();
    match cmd {
        ParkedCommand::List { projection, all, json } => {
            let mut parked = sink.parked(projection.as_deref())?;
            parked.retain(|p| all || p.status == "parked");
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&parked)?)?;
            } else if parked.is_empty() {
                writeln!(out, "no parked events")?;
            }
            for p in parked.iter().filter(|_| !json) {
                let behind = p.behind.map(|b| format!(" behind position {b}")).unwrap_or_default();
                writeln!(out, "#{} {} [{}{behind}] {} {}@{} position {}: {}", p.id, p.projection, p.status, p.event_type, p.stream, p.revision, p.position, p.error)?;
            }
        }
        ParkedCommand::Show { id } => {
            let record = sink.parked(None)?.into_iter().find(|p| p.id == id);
            let record = record.with_context(|| format!("no parked event #{id} (see `projector parked list --all`)"))?;
            writeln!(out, "{}", serde_json::to_string_pretty(&record)?)?;
        }
        ParkedCommand::Replay { id, all: _, projection, wait } => {
            let only = projection.clone();
            let which = id.map_or(Which::All { projection }, Which::One);
            let plugins = projector::app::load_plugins(config)?;
            let handling = |projection: &str| {
                let settings = config.lane_settings(projection);
                projector::parking::Handling { deadline: settings.call_deadline, park_mode: settings.park_mode }
            };
            let hold = |projection: &str| hold_lease(config, &sink, projection, wait);
            let report = replay(&plugins, sink.as_ref(), which, &handling, &hold)?;
            writeln!(out, "replayed {} events; {} still parked", report.replayed, report.still_parked)?;
            for failure in &report.failures {
                writeln!(out, "  {failure}")?;
            }
            // Projections on a persistent subscription: the server holds its own
            // copy of what the host parked; its replay drains it (what the
            // replay above released comes back as applied and is confirmed).
            let groups = config.projections.iter().filter_map(|(name, p)| Some((name, p.group.as_deref()?)));
            for (name, group) in groups.filter(|(name, _)| id.is_none() && only.as_ref().is_none_or(|o| o == *name)) {
                projector::source::esdb::persistent::replay_parked(&config.source, group)?;
                writeln!(out, "asked the server to deliver the events parked in group `{group}` ({name}) again; running hosts take them up")?;
            }
        }
        ParkedCommand::Discard { id, reason, wait } => {
            let record = sink.parked(None)?.into_iter().find(|p| p.id == id && p.status == "parked");
            let record = record.with_context(|| format!("no parked event #{id} waiting (see `projector parked list`)"))?;
            let lease = hold_lease(config, &sink, &record.projection, wait)?;
            // Again under the lease: another command may have resolved it meanwhile.
            let record = sink.parked(None)?.into_iter().find(|p| p.id == id && p.status == "parked");
            let record = record.with_context(|| format!("parked event #{id} was resolved while this waited (see `projector parked list --all`)"))?;
            let resolved = projector::sink::Resolved {
                projection: &record.projection,
                id,
                resolution: Resolution::Discarded,
                note: Some(&reason),
                applied: None,
                lease: Some(lease.token()),
            };
            sink.resolve_parked(&resolved).map_err(|e| anyhow::anyhow!("{e}"))?;
            writeln!(out, "discarded #{id} ({} {}@{}): {reason}", record.event_type, record.stream, record.revision)?;
        }
    }
    Ok(())
}

/// The lease on `projection`'s read model, for a command that writes to it.
fn hold_lease(config: &Config, sink: &Arc<dyn Sink>, projection: &str, wait: bool) -> Result<Arc<projector::sink::lease::Lease>> {
    static NEVER: AtomicBool = AtomicBool::new(false);
    let length = Duration::from_millis(config.lease_ms);
    let lease = projector::sink::lease::Lease::take(sink.clone(), projection, length, wait, &NEVER);
    // The refusal tells a starting host what to do; an operator's command is told here.
    let lease = lease.map_err(|e| match e.downcast_ref::<projector::sink::lease::Held>() {
        Some(held) => anyhow::anyhow!(
            "the read model of projection {projection} is held by {}, which runs it: stop that host first, or give --wait to wait until it stops",
            held.holder
        ),
        None => e,
    })?;
    lease.context("the lease was not taken")
}

fn graph(config: &Config, cmd: GraphCommand, out: &mut dyn Write) -> Result<()> {
    let sink = projector::sink::open_existing(&config.sink, &config.neo4j)?;
    match cmd {
        GraphCommand::Stats { json: true } => writeln!(out, "{}", serde_json::to_string(&sink.stats()?)?)?,
        GraphCommand::Stats { json: false } => {
            let stats = sink.stats()?;
            writeln!(out, "nodes")?;
            for (label, n) in &stats.nodes {
                writeln!(out, "  {label:<24} {n:>9}")?;
            }
            writeln!(out, "relationships")?;
            for (rel, n) in &stats.relationships {
                writeln!(out, "  {rel:<24} {n:>9}")?;
            }
        }
        GraphCommand::Export => sink.export(out)?,
        GraphCommand::Nodes { label, limit } => {
            for node in sink.nodes(&label, limit)? {
                writeln!(out, "{label} {node}")?;
            }
        }
    }
    Ok(())
}
