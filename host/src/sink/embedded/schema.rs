//! The embedded graph's tables.

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS nodes (
    id    INTEGER PRIMARY KEY,
    label TEXT NOT NULL,
    key   TEXT NOT NULL,
    props TEXT NOT NULL,
    UNIQUE (label, key)
);
CREATE TABLE IF NOT EXISTS edges (
    src   INTEGER NOT NULL,
    type  TEXT    NOT NULL,
    dst   INTEGER NOT NULL,
    props TEXT    NOT NULL,
    PRIMARY KEY (src, type, dst)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edges_by_dst ON edges (dst);
CREATE TABLE IF NOT EXISTS checkpoints (
    projection TEXT PRIMARY KEY,
    position   INTEGER NOT NULL,
    high_water INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS guards (
    projection TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    part       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (projection, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS parked (
    id             INTEGER PRIMARY KEY,
    projection     TEXT    NOT NULL,
    key            TEXT    NOT NULL,
    position       INTEGER NOT NULL,
    event          TEXT    NOT NULL,
    error          TEXT    NOT NULL,
    attempts       INTEGER NOT NULL,
    plugin_version TEXT    NOT NULL,
    behind         INTEGER,
    parked_at      TEXT    NOT NULL,
    status         TEXT    NOT NULL DEFAULT 'parked',
    resolved_at    TEXT,
    note           TEXT,
    part           INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS parked_by_key ON parked (projection, key, status);
-- One writer per read model: the host whose token is here commits; expiry in Unix ms.
CREATE TABLE IF NOT EXISTS leases (
    projection TEXT PRIMARY KEY,
    token      TEXT    NOT NULL,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
";

/// What graphs made before a split event's parts were told apart lack; run
/// after `SCHEMA`, each step only where it is missing.
pub const PARTS: [(&str, &str, &str); 2] = [
    ("guards", "part", "ALTER TABLE guards ADD COLUMN part INTEGER NOT NULL DEFAULT 0"),
    ("parked", "part", "ALTER TABLE parked ADD COLUMN part INTEGER NOT NULL DEFAULT 0"),
];

/// An event re-delivered after a restart is not parked twice; each part of a split is parked once.
pub const PARKED_ONCE: &str = "
DROP INDEX IF EXISTS parked_once;
CREATE UNIQUE INDEX IF NOT EXISTS parked_once_per_part ON parked (projection, position, part, key) WHERE status = 'parked';
";
