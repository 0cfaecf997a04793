//! Applying one mutation, or one parked event, inside a transaction.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension, Transaction};

use crate::parking::{event_to_json, now, Parked};
use crate::sink::Applied;
use crate::{Mutation, NodeRef, Property};

use crate::sink::KeyProperties;

/// Node ids found or made in the current transaction: labels and keys repeat
/// within a batch (an interview, its keywords), and each lookup saved is a query.
/// It lives no longer than the transaction, so it cannot go stale.
#[derive(Default)]
pub struct NodeIds(HashMap<(String, String), i64>);

impl NodeIds {
    fn get(&self, node: &NodeRef) -> Option<i64> {
        // A borrowed lookup would need a custom key type; a batch holds few distinct nodes.
        self.0.get(&(node.label.clone(), node.key.clone())).copied()
    }

    fn put(&mut self, node: &NodeRef, id: i64) {
        self.0.insert((node.label.clone(), node.key.clone()), id);
    }

    fn forget(&mut self, node: &NodeRef) {
        self.0.remove(&(node.label.clone(), node.key.clone()));
    }
}

pub fn mutation(tx: &Transaction, keys: &KeyProperties, ids: &mut NodeIds, m: &Mutation) -> rusqlite::Result<()> {
    match m {
        Mutation::MergeNode(n) => {
            tx.prepare_cached(
                "INSERT INTO nodes (label, key, props) VALUES (?1, ?2, json_patch(json_object(?3, ?2), ?4))
                 ON CONFLICT (label, key) DO UPDATE SET props = json_patch(props, ?4)",
            )?
            .execute(params![n.node.label, n.node.key, key_property(keys, &n.node), props(&n.set)])?;
        }
        Mutation::RemoveProperties(r) => {
            let patch: serde_json::Map<_, _> = r.names.iter().map(|n| (n.clone(), serde_json::Value::Null)).collect();
            tx.prepare_cached("UPDATE nodes SET props = json_patch(props, ?3) WHERE label = ?1 AND key = ?2")?
                .execute(params![r.node.label, r.node.key, serde_json::Value::Object(patch).to_string()])?;
        }
        Mutation::DeleteNode(n) => {
            let found = find(tx, ids, n)?;
            ids.forget(n);
            if let Some(id) = found {
                tx.prepare_cached("DELETE FROM edges WHERE src = ?1")?.execute([id])?;
                tx.prepare_cached("DELETE FROM edges WHERE dst = ?1")?.execute([id])?;
                tx.prepare_cached("DELETE FROM nodes WHERE id = ?1")?.execute([id])?;
            }
        }
        Mutation::MergeEdge(e) => {
            let src = merge(tx, keys, ids, &e.edge.from)?;
            let dst = merge(tx, keys, ids, &e.edge.to)?;
            tx.prepare_cached(
                "INSERT INTO edges (src, type, dst, props) VALUES (?1, ?2, ?3, json_patch('{}', ?4))
                 ON CONFLICT (src, type, dst) DO UPDATE SET props = json_patch(props, ?4)",
            )?
            .execute(params![src, e.edge.rel_type, dst, props(&e.set)])?;
        }
        Mutation::DeleteEdge(e) => {
            if let (Some(src), Some(dst)) = (find(tx, ids, &e.from)?, find(tx, ids, &e.to)?) {
                tx.prepare_cached("DELETE FROM edges WHERE src = ?1 AND type = ?2 AND dst = ?3")?
                    .execute(params![src, e.rel_type, dst])?;
            }
        }
        Mutation::DeleteEdges(e) => {
            if let Some(src) = find(tx, ids, &e.from)? {
                tx.prepare_cached("DELETE FROM edges WHERE src = ?1 AND type = ?2")?.execute(params![src, e.rel_type])?;
            }
        }
    }
    Ok(())
}

/// One event's mutations, then its guard.
pub fn applied(
    tx: &Transaction,
    keys: &KeyProperties,
    ids: &mut NodeIds,
    projection: &str,
    applied: &Applied,
) -> rusqlite::Result<()> {
    for m in applied.mutations {
        mutation(tx, keys, ids, m)?;
    }
    tx.prepare_cached(
        "INSERT INTO guards (projection, key, position, part) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (projection, key) DO UPDATE SET position = excluded.position, part = excluded.part
         WHERE (excluded.position, excluded.part) > (guards.position, guards.part)",
    )?
    .execute(params![projection, applied.key, applied.position as i64, applied.part])?;
    Ok(())
}

pub fn park(tx: &Transaction, projection: &str, p: &Parked) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO parked (projection, key, position, event, error, attempts, plugin_version, behind, parked_at, part)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        projection,
        p.key,
        p.event.position as i64,
        event_to_json(&p.event).to_string(),
        p.error,
        p.attempts,
        p.plugin_version,
        p.behind.map(|b| b as i64),
        now(),
        p.part,
    ])?;
    Ok(())
}

fn key_property<'a>(keys: &'a KeyProperties, node: &NodeRef) -> &'a str {
    keys.get(&node.label).map_or("id", String::as_str)
}

fn find(tx: &Transaction, ids: &mut NodeIds, node: &NodeRef) -> rusqlite::Result<Option<i64>> {
    if let Some(id) = ids.get(node) {
        return Ok(Some(id));
    }
    let id = tx
        .prepare_cached("SELECT id FROM nodes WHERE label = ?1 AND key = ?2")?
        .query_row(params![node.label, node.key], |r| r.get(0))
        .optional()?;
    if let Some(id) = id {
        ids.put(node, id);
    }
    Ok(id)
}

fn merge(tx: &Transaction, keys: &KeyProperties, ids: &mut NodeIds, node: &NodeRef) -> rusqlite::Result<i64> {
    if let Some(id) = find(tx, ids, node)? {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO nodes (label, key, props) VALUES (?1, ?2, json_object(?3, ?2))")?
        .execute(params![node.label, node.key, key_property(keys, node)])?;
    let id = tx.last_insert_rowid();
    ids.put(node, id);
    Ok(id)
}

/// Properties as a JSON merge patch: a null removes the property, as `SET n += $props` does.
fn props(set: &[Property]) -> String {
    let map: serde_json::Map<_, _> = set.iter().map(|p| (p.name.clone(), crate::json::value(&p.value))).collect();
    serde_json::Value::Object(map).to_string()
}
