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
    note           TEXT
);
CREATE INDEX IF NOT EXISTS parked_by_key ON parked (projection, key, status);
-- One writer per read model: the host whose token is here commits; expiry in Unix ms.
CREATE TABLE IF NOT EXISTS leases (
    projection TEXT PRIMARY KEY,
    token      TEXT    NOT NULL,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
-- An event re-delivered after a restart is not parked twice.
CREATE UNIQUE INDEX IF NOT EXISTS parked_once ON parked (projection, position, key) WHERE status = 'parked';
";
