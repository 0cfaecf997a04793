//! Reading the embedded graph: counts, a deterministic export, nodes, parked events.

use std::io::Write;

use anyhow::Result;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value as Json};

use crate::parking::ParkedRecord;
use crate::sink::{EdgeView, GraphStats, Neighbourhood, NodeView};

pub fn stats(conn: &Connection) -> Result<GraphStats> {
    let count = |sql: &str| -> Result<_> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    Ok(GraphStats {
        nodes: count("SELECT label, count(*) FROM nodes GROUP BY label")?,
        relationships: count("SELECT type, count(*) FROM edges GROUP BY type")?,
    })
}

fn parse(props: &str) -> Json {
    serde_json::from_str(props).unwrap_or(Json::Null)
}

/// Nodes ordered by (label, key), then relationships ordered by (type, from, to);
/// JSON object keys sorted. Equal graphs export byte-identical text.
pub fn export(conn: &Connection, out: &mut dyn Write) -> Result<()> {
    let mut nodes = conn.prepare("SELECT label, key, props FROM nodes ORDER BY label, key")?;
    let mut rows = nodes.query([])?;
    while let Some(r) = rows.next()? {
        let line = json!({"node": r.get::<_, String>(0)?, "key": r.get::<_, String>(1)?, "props": parse(&r.get::<_, String>(2)?)});
        writeln!(out, "{line}")?;
    }
    let mut edges = conn.prepare(
        "SELECT e.type, a.label, a.key, b.label, b.key, e.props FROM edges e
         JOIN nodes a ON a.id = e.src JOIN nodes b ON b.id = e.dst
         ORDER BY e.type, a.label, a.key, b.label, b.key",
    )?;
    let mut rows = edges.query([])?;
    while let Some(r) = rows.next()? {
        let line = json!({
            "rel": r.get::<_, String>(0)?,
            "from": [r.get::<_, String>(1)?, r.get::<_, String>(2)?],
            "to": [r.get::<_, String>(3)?, r.get::<_, String>(4)?],
            "props": parse(&r.get::<_, String>(5)?),
        });
        writeln!(out, "{line}")?;
    }
    Ok(())
}

pub fn nodes(conn: &Connection, label: &str, limit: usize) -> Result<Vec<Json>> {
    let mut stmt = conn.prepare("SELECT props FROM nodes WHERE label = ?1 ORDER BY key LIMIT ?2")?;
    let rows = stmt.query_map(params![label, limit as i64], |r| r.get::<_, String>(0))?;
    Ok(rows.map(|p| p.map(|p| parse(&p))).collect::<Result<_, _>>()?)
}

/// The node of `label` with `key`, and up to `limit` of its relationships.
pub fn neighbours(conn: &Connection, label: &str, key: &str, limit: usize) -> Result<Option<Neighbourhood>> {
    let node = conn
        .query_row("SELECT id, props FROM nodes WHERE label = ?1 AND key = ?2", params![label, key], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .optional()?;
    let Some((id, props)) = node else { return Ok(None) };
    let mut stmt = conn.prepare(
        "SELECT e.type, 1, n.label, n.key, n.props FROM edges e JOIN nodes n ON n.id = e.dst WHERE e.src = ?1
         UNION ALL
         SELECT e.type, 0, n.label, n.key, n.props FROM edges e JOIN nodes n ON n.id = e.src WHERE e.dst = ?1
         ORDER BY 1, 3, 4 LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![id, limit as i64 + 1], |r| {
        Ok(EdgeView {
            rel: r.get(0)?,
            outgoing: r.get::<_, i64>(1)? == 1,
            other: NodeView { label: r.get(2)?, key: r.get(3)?, props: parse(&r.get::<_, String>(4)?) },
        })
    })?;
    let mut edges = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let more = edges.len() > limit;
    edges.truncate(limit);
    Ok(Some(Neighbourhood { node: NodeView { label: label.to_owned(), key: key.to_owned(), props: parse(&props) }, edges, more }))
}

pub fn parked(conn: &Connection, projection: Option<&str>) -> Result<Vec<ParkedRecord>> {
    let mut stmt = conn.prepare(
        "SELECT id, projection, key, position, event, error, attempts, plugin_version, behind, parked_at, status,
                resolved_at, note, part
         FROM parked WHERE ?1 IS NULL OR projection = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([projection], |r| {
        Ok(ParkedRecord {
            id: r.get(0)?,
            projection: r.get(1)?,
            key: r.get(2)?,
            position: r.get::<_, i64>(3)? as u64,
            error: r.get(5)?,
            attempts: r.get(6)?,
            plugin_version: r.get(7)?,
            behind: r.get::<_, Option<i64>>(8)?.map(|b| b as u64),
            parked_at: r.get(9)?,
            status: r.get(10)?,
            resolved_at: r.get(11)?,
            note: r.get(12)?,
            part: r.get(13)?,
            event: parse(&r.get::<_, String>(4)?),
            ..ParkedRecord::default()
        }
        .described())
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
