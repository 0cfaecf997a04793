//! The embedded log and the embedded graph are SQLite files, each marked with
//! its kind (SQLite's `application_id`), so that one is never taken for the
//! other, and every error about one names its path.

use std::path::Path;

use anyhow::{bail, Context, Result};
use rusqlite::Connection;

/// What a Projector file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The embedded event log (a source).
    EventLog,
    /// The embedded graph (a sink).
    Graph,
}

impl Kind {
    /// The file's `application_id`: "PRJL" and "PRJG".
    fn id(self) -> i32 {
        match self {
            Kind::EventLog => 0x5052_4A4C,
            Kind::Graph => 0x5052_4A47,
        }
    }

    /// A table only this kind has, to recognise files made before the mark.
    fn table(self) -> &'static str {
        match self {
            Kind::EventLog => "events",
            Kind::Graph => "nodes",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::EventLog => "an event log",
            Kind::Graph => "a graph",
        }
    }

    fn other(self) -> Kind {
        match self {
            Kind::EventLog => Kind::Graph,
            Kind::Graph => Kind::EventLog,
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Kind::EventLog => "an event log is the source (`--source embedded:PATH`)",
            Kind::Graph => "a graph is the sink (`--sink embedded:PATH`)",
        }
    }
}

/// Refuses a path that cannot be such a file: empty, or a directory.
pub fn check_path(path: &Path, kind: Kind) -> Result<()> {
    if path.as_os_str().is_empty() {
        bail!("no path for {}: write `embedded:PATH`, e.g. `embedded:.projector/{}`", kind.name(), default_file(kind));
    }
    if path.is_dir() {
        bail!("{} is a directory, not {}: name a file, e.g. {}", path.display(), kind.name(), path.join(default_file(kind)).display());
    }
    Ok(())
}

fn default_file(kind: Kind) -> &'static str {
    match kind {
        Kind::EventLog => "events.db",
        Kind::Graph => "graph.db",
    }
}

/// Opens (or makes) the file of `kind` at `path`, refusing one of another kind.
pub fn open(path: &Path, kind: Kind) -> Result<Connection> {
    check_path(path, kind)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let conn = Connection::open(path).with_context(|| format!("cannot open {} {}", kind.name(), path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(2))?;
    let not_sqlite = || format!("{} is not {} (not an SQLite file of Projector's)", path.display(), kind.name());
    let id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0)).with_context(not_sqlite)?;
    let has = |table: &str| -> Result<bool> {
        Ok(conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| r.get::<_, i64>(0))? > 0)
    };
    let other = kind.other();
    if id == other.id() || (id == 0 && has(other.table()).with_context(not_sqlite)? && !has(kind.table())?) {
        bail!("{} is {}, not {}: {}; did you swap the source and the sink?", path.display(), other.name(), kind.name(), other.hint());
    }
    if id != 0 && id != kind.id() {
        bail!("{} is not {}: it is an SQLite file of another application (application_id {id:#x})", path.display(), kind.name());
    }
    if id == 0 {
        conn.pragma_update(None, "application_id", kind.id()).with_context(|| format!("cannot mark {} as {}", path.display(), kind.name()))?;
    }
    Ok(conn)
}

/// Adds a column a file made by an older release lacks: `ddl` (an `ALTER
/// TABLE ... ADD COLUMN`) runs only where `table` has no `column`, checked
/// inside a write transaction, so two processes opening the file at once
/// both find it brought up to date.
pub fn add_column(conn: &Connection, table: &str, column: &str, ddl: &str) -> rusqlite::Result<()> {
    let has = |conn: &Connection| -> rusqlite::Result<bool> {
        conn.query_row(&format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = '{column}'"), [], |r| r.get(0))
    };
    if has(conn)? {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let added = match has(conn) {
        Ok(false) => conn.execute_batch(ddl),
        other => other.map(drop),
    };
    match added {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_one_kind_is_refused_as_the_other_and_bad_paths_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("events.db");
        drop(open(&log, Kind::EventLog).unwrap());
        let err = format!("{:#}", open(&log, Kind::Graph).unwrap_err());
        assert!(err.contains("events.db is an event log, not a graph") && err.contains("swap"), "{err}");
        let err = format!("{:#}", open(Path::new(""), Kind::Graph).unwrap_err());
        assert!(err.contains("no path for a graph"), "{err}");
        let err = format!("{:#}", open(dir.path(), Kind::EventLog).unwrap_err());
        assert!(err.contains("is a directory, not an event log"), "{err}");
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "not a database at all, just some words that fill a page").unwrap();
        let err = format!("{:#}", open(&text, Kind::Graph).unwrap_err());
        assert!(err.contains("notes.txt is not a graph"), "{err}");
    }
}
