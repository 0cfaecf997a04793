//! The embedded sink: a property graph in one SQLite file. Nodes are keyed by
//! (label, key), relationships by (from, type, to); properties are JSON objects.
//! Every commit is one SQLite transaction.

mod apply;
mod read;
mod schema;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};

use super::lease::{now_ms, Claim, Taken};
use super::{Commit, Identity, KeyProperties, ProjectionState, Resolved, Sink, SinkError};
use crate::parking::ParkedRecord;
use crate::plugins::WriteScope;

/// How long a write waits for a lock held by another process before the sink
/// counts as unavailable (and the lane backs off and retries).
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

/// The page cache of the graph's connection. The graph's indexes are read on
/// every merge; keeping them in memory is most of the sink's speed.
pub const PAGE_CACHE_KIB: usize = 64 * 1024;

pub struct EmbeddedGraph {
    conn: Mutex<Connection>,
    /// Label -> the property that holds a node's key, from the projections' manifests.
    key_properties: Mutex<KeyProperties>,
}

impl EmbeddedGraph {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = crate::store_file::open(path, crate::store_file::Kind::Graph)?;
        conn.busy_timeout(LOCK_WAIT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "cache_size", -(PAGE_CACHE_KIB as i64))?;
        conn.set_prepared_statement_cache_capacity(64);
        conn.execute_batch(schema::SCHEMA).with_context(|| format!("{} is not a Projector graph", path.display()))?;
        for (table, column, add) in schema::PARTS {
            crate::store_file::add_column(&conn, table, column, add).with_context(|| format!("cannot bring the graph {} up to date", path.display()))?;
        }
        conn.execute_batch(schema::PARKED_ONCE)?;
        Ok(Self { conn: Mutex::new(conn), key_properties: Mutex::new(HashMap::new()) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Commits, unless the commit's lease is not the read model's any more:
    /// then nothing is written and the lease's holder is returned.
    fn try_commit(&self, commit: &Commit) -> rusqlite::Result<Option<String>> {
        let keys = self.key_properties.lock().unwrap_or_else(|p| p.into_inner());
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if let Some(token) = commit.lease {
            // Read inside the transaction: a lease taken over after this read
            // makes the write below fail (the snapshot is stale), never pass.
            if let Some(holder) = fenced(&tx, commit.projection, token)? {
                return Ok(Some(holder));
            }
        }
        let mut ids = apply::NodeIds::default();
        for applied in &commit.applied {
            apply::applied(&tx, &keys, &mut ids, commit.projection, applied)?;
        }
        for parked in &commit.parked {
            apply::park(&tx, commit.projection, parked)?;
        }
        let high_water = commit
            .applied
            .iter()
            .map(|a| a.position)
            .chain(commit.parked.iter().map(|p| p.event.position))
            .max()
            .unwrap_or(0);
        tx.prepare_cached(
            "INSERT INTO checkpoints (projection, position, high_water) VALUES (?1, ?2, ?3)
             ON CONFLICT (projection) DO UPDATE SET position = max(position, excluded.position),
                                                    high_water = max(high_water, excluded.high_water)",
        )?
        .execute(params![commit.projection, commit.checkpoint as i64, high_water as i64])?;
        tx.commit()?;
        Ok(None)
    }
}

/// The holder of the projection's lease, if `token` does not hold it.
fn fenced(tx: &rusqlite::Transaction, projection: &str, token: &str) -> rusqlite::Result<Option<String>> {
    let lease: Option<(String, String)> = tx
        .prepare_cached("SELECT token, holder FROM leases WHERE projection = ?1")?
        .query_row([projection], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match lease {
        Some((held, _)) if held == token => None,
        Some((_, holder)) => Some(holder),
        None => Some("nobody (it was given up after this host lost it)".to_owned()),
    })
}

/// Busy, locked and I/O failures are outages; anything else is the data's fault.
fn classify(error: rusqlite::Error) -> SinkError {
    let outage = matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::SystemIoFailure | ErrorCode::CannotOpen | ErrorCode::DiskFull | ErrorCode::ReadOnly)
    );
    let error = anyhow::Error::new(error).context("embedded graph");
    if outage {
        SinkError::Unavailable(error)
    } else {
        SinkError::Rejected(error)
    }
}

impl Sink for EmbeddedGraph {
    fn prepare(&self, projection: &str, scope: &WriteScope) -> Result<ProjectionState> {
        super::register_keys(&mut self.key_properties.lock().unwrap_or_else(|p| p.into_inner()), projection, scope, "another projection")?;
        let conn = self.conn();
        let (checkpoint, high_water) = conn
            .query_row("SELECT position, high_water FROM checkpoints WHERE projection = ?1", [projection], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })
            .optional()?
            .unwrap_or((0, 0));
        let mut stmt = conn.prepare(
            "SELECT key, min(position) FROM parked WHERE projection = ?1 AND status = 'parked' GROUP BY key",
        )?;
        let blocked_keys = stmt
            .query_map([projection], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?
            .collect::<Result<_, _>>()?;
        Ok(ProjectionState { checkpoint, high_water, blocked_keys })
    }

    fn guard(&self, projection: &str, key: &str) -> Result<Option<Identity>, SinkError> {
        self.conn()
            .prepare_cached("SELECT position, part FROM guards WHERE projection = ?1 AND key = ?2")
            .and_then(|mut s| {
                s.query_row([projection, key], |r| Ok(Identity { position: r.get::<_, i64>(0)? as u64, part: r.get(1)? })).optional()
            })
            .map_err(classify)
    }

    fn commit(&self, commit: &Commit) -> Result<(), SinkError> {
        match self.try_commit(commit).map_err(classify)? {
            None => Ok(()),
            Some(holder) => Err(SinkError::Fenced(holder)),
        }
    }

    fn take_lease(&self, claim: &Claim, renew: bool) -> Result<Taken, SinkError> {
        let mut conn = self.conn();
        let mut take = || -> rusqlite::Result<Taken> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now = now_ms();
            let held: Option<(String, String, i64)> = tx
                .query_row("SELECT token, holder, expires_at FROM leases WHERE projection = ?1", [&claim.projection], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            match held {
                Some((token, holder, _)) if renew && token != claim.token => return Ok(Taken::Lost { holder }),
                None if renew => return Ok(Taken::Lost { holder: "nobody (it was given up)".into() }),
                Some((token, holder, expires_at))
                    if token != claim.token && expires_at > now && claim.replaces.as_ref() != Some(&holder) =>
                {
                    return Ok(Taken::HeldBy { holder, expires_in: Duration::from_millis((expires_at - now) as u64) });
                }
                _ => {}
            }
            tx.execute(
                "INSERT INTO leases (projection, token, holder, expires_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (projection) DO UPDATE SET token = excluded.token, holder = excluded.holder, expires_at = excluded.expires_at",
                params![claim.projection, claim.token, claim.holder, now + claim.length.as_millis() as i64],
            )?;
            tx.commit()?;
            Ok(Taken::Yes)
        };
        take().map_err(classify)
    }

    fn release_lease(&self, projection: &str, token: &str) -> Result<(), SinkError> {
        self.conn().execute("DELETE FROM leases WHERE projection = ?1 AND token = ?2", [projection, token]).map(drop).map_err(classify)
    }

    fn stats(&self) -> Result<super::GraphStats> {
        read::stats(&self.conn())
    }

    fn export(&self, out: &mut dyn std::io::Write) -> Result<()> {
        read::export(&self.conn(), out)
    }

    fn nodes(&self, label: &str, limit: usize) -> Result<Vec<serde_json::Value>> {
        read::nodes(&self.conn(), label, limit)
    }

    fn parked(&self, projection: Option<&str>) -> Result<Vec<ParkedRecord>> {
        read::parked(&self.conn(), projection)
    }

    fn neighbours(&self, label: &str, key: &str, limit: usize) -> Result<Option<super::Neighbourhood>> {
        read::neighbours(&self.conn(), label, key, limit)
    }

    fn parked_count(&self, projection: &str) -> Result<u64> {
        let sql = "SELECT count(*) FROM parked WHERE projection = ?1 AND status = 'parked'";
        Ok(self.conn().query_row(sql, [projection], |r| r.get::<_, i64>(0))? as u64)
    }

    fn resolve_parked(&self, resolved: &Resolved) -> Result<(), SinkError> {
        let keys = self.key_properties.lock().unwrap_or_else(|p| p.into_inner());
        let mut conn = self.conn();
        let mut run = || -> rusqlite::Result<Option<String>> {
            // Immediate: it reads the lease, then writes; a deferred transaction
            // would fail (busy snapshot) when another host commits in between.
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if let Some(token) = resolved.lease {
                if let Some(holder) = fenced(&tx, resolved.projection, token)? {
                    return Ok(Some(holder));
                }
            }
            if let Some(applied) = &resolved.applied {
                apply::applied(&tx, &keys, &mut apply::NodeIds::default(), resolved.projection, applied)?;
            }
            tx.execute(
                "UPDATE parked SET status = ?3, note = ?4, resolved_at = ?5 WHERE projection = ?1 AND id = ?2",
                params![resolved.projection, resolved.id, resolved.resolution.status(), resolved.note, crate::parking::now()],
            )?;
            tx.commit()?;
            Ok(None)
        };
        match run().map_err(classify)? {
            None => Ok(()),
            Some(holder) => Err(SinkError::Fenced(holder)),
        }
    }

    fn checkpoint(&self, projection: &str) -> Result<u64> {
        let p: Option<i64> = self
            .conn()
            .query_row("SELECT position FROM checkpoints WHERE projection = ?1", [projection], |r| r.get(0))
            .optional()?;
        Ok(p.unwrap_or(0) as u64)
    }
}
