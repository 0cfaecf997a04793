//! Reading the Neo4j graph: counts, a deterministic export, nodes, parked events.
//! Bookkeeping nodes (labels starting with `_Projector`) are left out.

use std::io::Write;

use anyhow::{bail, Result};
use serde_json::{json, Value as Json};

use super::cypher::{ident, BOOKKEEPING_PREFIX, PARKED};
use super::Neo4jSink;
use crate::parking::ParkedRecord;
use crate::sink::{EdgeView, GraphStats, Neighbourhood, NodeView};

fn counts(sink: &Neo4jSink, query: &str) -> Result<std::collections::BTreeMap<String, u64>> {
    sink.rows(neo4rs::query(query).param("prefix", BOOKKEEPING_PREFIX))?
        .iter()
        .map(|row| Ok((row.get::<String>("name")?, row.get::<i64>("count")? as u64)))
        .collect()
}

pub fn stats(sink: &Neo4jSink) -> Result<GraphStats> {
    Ok(GraphStats {
        nodes: counts(
            sink,
            "MATCH (n) WITH labels(n)[0] AS name WHERE NOT name STARTS WITH $prefix RETURN name, count(*) AS count",
        )?,
        relationships: counts(sink, "MATCH ()-[r]->() RETURN type(r) AS name, count(*) AS count")?,
    })
}

/// A node's key: the value of its label's key property.
fn key_of(sink: &Neo4jSink, label: &str, props: &Json) -> String {
    let keys = sink.keys.read().unwrap_or_else(|p| p.into_inner());
    match &props[keys.get(label).map_or("id", String::as_str)] {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The same lines, in the same order, as the embedded sink's export: equal
/// graphs in either sink export byte-identical text. The graph is sorted in
/// memory, so this is for read models that fit in it.
pub fn export(sink: &Neo4jSink, out: &mut dyn Write) -> Result<()> {
    let rows = sink.rows(
        neo4rs::query(
            "MATCH (n) WITH n, labels(n)[0] AS label WHERE NOT label STARTS WITH $prefix
             RETURN label, properties(n) AS props",
        )
        .param("prefix", BOOKKEEPING_PREFIX),
    )?;
    let mut nodes = Vec::with_capacity(rows.len());
    for row in rows {
        let (label, props): (String, Json) = (row.get("label")?, row.get("props")?);
        nodes.push((label.clone(), key_of(sink, &label, &props), props));
    }
    nodes.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    for (label, key, props) in nodes {
        writeln!(out, "{}", json!({"node": label, "key": key, "props": props}))?;
    }
    let rows = sink.rows(neo4rs::query(
        "MATCH (a)-[r]->(b)
         RETURN type(r) AS rel, labels(a)[0] AS from_label, properties(a) AS from, labels(b)[0] AS to_label,
                properties(b) AS to, properties(r) AS props",
    ))?;
    let mut edges = Vec::with_capacity(rows.len());
    for row in rows {
        let (from_label, to_label): (String, String) = (row.get("from_label")?, row.get("to_label")?);
        let from = key_of(sink, &from_label, &row.get("from")?);
        let to = key_of(sink, &to_label, &row.get("to")?);
        edges.push((row.get::<String>("rel")?, from_label, from, to_label, to, row.get::<Json>("props")?));
    }
    edges.sort_by(|a, b| (&a.0, &a.1, &a.2, &a.3, &a.4).cmp(&(&b.0, &b.1, &b.2, &b.3, &b.4)));
    for (rel, from_label, from, to_label, to, props) in edges {
        writeln!(out, "{}", json!({"rel": rel, "from": [from_label, from], "to": [to_label, to], "props": props}))?;
    }
    Ok(())
}

pub fn nodes(sink: &Neo4jSink, label: &str, limit: usize) -> Result<Vec<Json>> {
    if label.starts_with(BOOKKEEPING_PREFIX) {
        bail!("`{label}` holds the host's own records, not a read model");
    }
    let key = sink.keys.read().unwrap_or_else(|p| p.into_inner()).get(label).cloned().unwrap_or_else(|| "id".into());
    // Some servers allocate for the limit up front: a limit past any graph's size means none.
    let limit = if limit >= i32::MAX as usize { String::new() } else { format!(" LIMIT {limit}") };
    let query = format!("MATCH (n:{}) RETURN properties(n) AS props ORDER BY n.{}{limit}", ident(label)?, ident(&key)?);
    sink.rows(neo4rs::query(&query))?.iter().map(|row| Ok(row.get("props")?)).collect()
}

/// The node of `label` with `key` (its key property's value: keys are text),
/// and up to `limit` of its relationships.
pub fn neighbours(sink: &Neo4jSink, label: &str, key: &str, limit: usize) -> Result<Option<Neighbourhood>> {
    if label.starts_with(BOOKKEEPING_PREFIX) {
        bail!("`{label}` holds the host's own records, not a read model");
    }
    let keys = sink.keys.read().unwrap_or_else(|p| p.into_inner()).clone();
    let key_of = |label: &str| keys.get(label).cloned().unwrap_or_else(|| "id".into());
    let query = format!(
        "MATCH (n:{}) WHERE n.{} = $key
         OPTIONAL MATCH (n)-[r]-(m)
         RETURN properties(n) AS node, type(r) AS rel, startNode(r) = n AS outgoing, labels(m) AS labels, properties(m) AS other
         ORDER BY rel, labels[0]
         LIMIT $limit",
        ident(label)?,
        ident(&key_of(label))?
    );
    let rows = sink.rows(neo4rs::query(&query).param("key", key).param("limit", limit as i64 + 1))?;
    let Some(first) = rows.first() else { return Ok(None) };
    let node = NodeView { label: label.to_owned(), key: key.to_owned(), props: first.get("node")? };
    let mut edges = Vec::new();
    for row in &rows {
        let Ok(rel) = row.get::<String>("rel") else { continue };
        let labels: Vec<String> = row.get("labels")?;
        let other_label = labels.into_iter().next().unwrap_or_default();
        let props: Json = row.get("other")?;
        let other_key = match &props[key_of(&other_label)] {
            Json::String(s) => s.clone(),
            Json::Null => String::new(),
            v => v.to_string(),
        };
        edges.push(EdgeView { rel, outgoing: row.get("outgoing")?, other: NodeView { label: other_label, key: other_key, props } });
    }
    edges.sort_by(|a, b| (&a.rel, &a.other.label, &a.other.key).cmp(&(&b.rel, &b.other.label, &b.other.key)));
    let more = edges.len() > limit;
    edges.truncate(limit);
    Ok(Some(Neighbourhood { node, edges, more }))
}

/// How many of a projection's parked events wait for a replay or a discard.
pub fn parked_count(sink: &Neo4jSink, projection: &str) -> Result<u64> {
    let rows = sink.rows(
        neo4rs::query(&format!("MATCH (p:`{PARKED}`) WHERE p.projection = $projection AND p.status = 'parked' RETURN count(p) AS n"))
            .param("projection", projection),
    )?;
    Ok(rows.first().map(|row| row.get::<i64>("n")).transpose()?.unwrap_or(0) as u64)
}

pub fn parked(sink: &Neo4jSink, projection: Option<&str>) -> Result<Vec<ParkedRecord>> {
    let rows = sink.rows(
        neo4rs::query(&format!(
            "MATCH (p:`{PARKED}`) WHERE $projection IS NULL OR p.projection = $projection
             RETURN properties(p) AS p ORDER BY p.id"
        ))
        .param("projection", projection),
    )?;
    rows.iter()
        .map(|row| {
            let p: Json = row.get("p")?;
            let event: Json = serde_json::from_str(p["event"].as_str().unwrap_or("null"))?;
            let text = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
            Ok(ParkedRecord {
                id: p["id"].as_i64().unwrap_or_default(),
                projection: text("projection"),
                key: text("key"),
                position: p["position"].as_u64().unwrap_or_default(),
                part: p["part"].as_u64().unwrap_or_default() as u32,
                error: text("error"),
                attempts: p["attempts"].as_u64().unwrap_or_default() as u32,
                plugin_version: text("plugin_version"),
                behind: p["behind"].as_u64(),
                parked_at: text("parked_at"),
                status: text("status"),
                resolved_at: p["resolved_at"].as_str().map(str::to_owned),
                note: p["note"].as_str().map(str::to_owned),
                event,
                ..ParkedRecord::default()
            }
            .described())
        })
        .collect()
}
