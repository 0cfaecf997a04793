//! Logging: `tracing` to standard error, filtered by `PROJECTOR_LOG` (e.g.
//! `PROJECTOR_LOG=debug` or `PROJECTOR_LOG=projector=debug`), `info` by default
//! (the Neo4j driver's own chatter from `warn`; the EventStoreDB client's none,
//! since the source reports its errors itself with more context). A filter
//! that does not name the EventStoreDB client keeps it at `error`: when a
//! server ends a subscription cleanly, the client warns in a loop without end.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// For people: one line of text per event.
    #[default]
    Text,
    /// For log shippers: one JSON object per line, its fields (projection,
    /// lane, stream, position, ...) beside `timestamp`, `level` and `message`.
    Json,
}

pub fn init(default_level: &str, format: Format) {
    let asked = std::env::var("PROJECTOR_LOG").ok().filter(|f| !f.trim().is_empty());
    let filter = match asked {
        Some(asked) if asked.contains("eventstore") => EnvFilter::new(asked),
        Some(asked) => EnvFilter::new(format!("{asked},eventstore=error")),
        None => EnvFilter::new(format!("{default_level},neo4rs=warn,eventstore=off")),
    };
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    let _ = match format {
        Format::Text => logs.with_ansi(std::io::stderr().is_terminal()).try_init(),
        Format::Json => logs.json().flatten_event(true).with_current_span(false).try_init(),
    };
}

/// The process's peak resident memory in bytes (Linux; `None` elsewhere).
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `text` safe to print to a terminal or a log: control characters and the
/// invisible ones that reorder or hide text (bidirectional overrides,
/// zero-width spaces, line separators) are escaped, as `\u{..}`. For what a
/// plugin, an event or a request chose: its panic messages, log lines, names.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars().map(|c| if hidden(c) { c.escape_unicode().to_string() } else { c.to_string() }).collect::<String>().into()
}

/// Whether `c` is a character that must not reach a terminal as it is.
pub fn hidden(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_and_reorderings_are_shown_as_escapes() {
        assert_eq!(super::printable("plain: ok\tyes\n"), "plain: ok\tyes\n");
        assert_eq!(super::printable("evil\u{1b}[31mRED\rFAKE"), "evil\\u{1b}[31mRED\\u{d}FAKE");
        assert_eq!(super::printable("a\u{202E}b\u{200B}"), "a\\u{202e}b\\u{200b}");
    }
}

