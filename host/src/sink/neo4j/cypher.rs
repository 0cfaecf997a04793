//! Mutations as parameterised Cypher. Labels, relationship types and key
//! properties are checked against the identifier rules and backtick-quoted;
//! every value travels as a parameter.
//!
//! Mutations of one shape (say, merges of `Keyword` nodes) across the events
//! of a batch go in one `UNWIND $rows` statement. Within a stretch of merges,
//! rows are grouped by shape: merges commute across shapes (an edge merge
//! only finds or makes its end nodes by key, and rows of one shape keep their
//! order). A removal or deletion ends the stretch, so the effects are those of
//! the mutations applied one by one, in order.
//!
//! Lanes commit at once and share nodes (a keyword, a topic), and a merge
//! locks the nodes it touches until its transaction ends. So that two lanes
//! take those locks in one order, rather than deadlock and try again, a
//! stretch's statements go in shape order (node merges first) and each
//! statement's rows in key order; rows of one key keep their order.


use anyhow::{bail, Result};
use neo4rs::{BoltList, BoltMap, BoltNull, BoltType, Query};

use crate::plugins::is_identifier;
use crate::sink::Applied;
use crate::{Mutation, Property, Scalar, Value};

/// Labels the host keeps its own records under; a plugin's labels start with a letter.
pub const GUARD: &str = "_ProjectorGuard";
pub const CHECKPOINT: &str = "_ProjectorCheckpoint";
pub const PARKED: &str = "_ProjectorParked";
pub const SEQUENCE: &str = "_ProjectorSequence";
/// One per projection: the lease of the host that writes its read model.
pub const LEASE: &str = "_ProjectorLease";
/// One per projected label: which property holds a node's key.
pub const LABEL: &str = "_ProjectorLabel";
/// What every bookkeeping label starts with.
pub const BOOKKEEPING_PREFIX: &str = "_Projector";

pub use crate::sink::KeyProperties;

/// A label, relationship type or property name, checked and quoted.
pub fn ident(name: &str) -> Result<String> {
    if !is_identifier(name) && !name.starts_with(BOOKKEEPING_PREFIX) {
        bail!("`{name}` is not a valid label, relationship type or property name (a letter, then letters, digits or `_`)");
    }
    Ok(format!("`{}`", name.replace('`', "``")))
}

/// The statements of one lane batch: every event's mutations, then the guards
/// and the checkpoint.
pub fn commit(projection: &str, applied: &[Applied], checkpoint: u64, high_water: u64, keys: &KeyProperties) -> Result<Vec<Query>> {
    let mut statements = mutations(applied.iter().flat_map(|a| a.mutations), keys)?;
    if let Some(guards) = guards(projection, applied) {
        statements.push(guards);
    }
    statements.push(
        neo4rs::query(&format!(
            "MERGE (c:`{CHECKPOINT}` {{projection: $projection}})
             SET c.position = CASE WHEN coalesce(c.position, 0) < $position THEN $position ELSE c.position END,
                 c.high_water = CASE WHEN coalesce(c.high_water, 0) < $high_water THEN $high_water ELSE c.high_water END"
        ))
        .param("projection", projection)
        .param("position", checkpoint as i64)
        .param("high_water", high_water as i64),
    );
    Ok(statements)
}

/// A guard orders its events by `at` = position * this + part (an upcaster
/// makes at most `MAX_SPLIT_PARTS` events of one), and keeps both for reading.
const PARTS_PER_POSITION: i64 = crate::runtime::limits::MAX_SPLIT_PARTS as i64;

/// One guard per applied event: the last event applied for its key.
pub fn guards(projection: &str, applied: &[Applied]) -> Option<Query> {
    if applied.is_empty() {
        return None;
    }
    let rows: Vec<BoltType> = applied
        .iter()
        .map(|a| {
            let mut row = BoltMap::with_capacity(3);
            row.put("id".into(), guard_id(projection, a.key).into());
            row.put("key".into(), a.key.into());
            row.put("at".into(), (a.position as i64 * PARTS_PER_POSITION + i64::from(a.part)).into());
            BoltType::Map(row)
        })
        .collect();
    Some(
        neo4rs::query(&format!(
            "UNWIND $rows AS row
             MERGE (g:`{GUARD}` {{id: row.id}}) ON CREATE SET g.projection = $projection, g.key = row.key
             SET g.at = CASE WHEN coalesce(g.at, coalesce(g.position, -1) * {PARTS_PER_POSITION}) < row.at THEN row.at ELSE g.at END
             SET g.position = g.at / {PARTS_PER_POSITION}, g.part = g.at % {PARTS_PER_POSITION}"
        ))
        .param("projection", projection)
        .param("rows", BoltType::List(BoltList { value: rows })),
    )
}

/// A guard's identity: projection names cannot hold a `:`.
pub fn guard_id(projection: &str, key: &str) -> String {
    format!("{projection}:{key}")
}

/// What a statement does, to what: mutations of one shape share a statement.
#[derive(PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Shape<'a> {
    MergeNode(&'a str),
    SetProperties(&'a str),
    DeleteNode(&'a str),
    MergeEdge(&'a str, &'a str, &'a str),
    DeleteEdge(&'a str, &'a str, &'a str),
    DeleteEdges(&'a str, &'a str),
}

impl Shape<'_> {
    /// Whether it only merges, and so commutes with the other merge shapes.
    fn merges(self) -> bool {
        matches!(self, Shape::MergeNode(_) | Shape::MergeEdge(..))
    }
}

/// Mutations as statements: one per shape within a stretch of merges, one per
/// run of the same shape otherwise.
pub fn mutations<'a>(mutations: impl Iterator<Item = &'a Mutation>, keys: &KeyProperties) -> Result<Vec<Query>> {
    let mut statements = Vec::new();
    // The groups of the current stretch: several shapes of merges, or one other shape.
    let mut stretch: Vec<(Shape, Vec<Row>)> = Vec::new();
    for m in mutations {
        let row = shape_and_row(m);
        let shape = row.shape;
        let merging = shape.merges() && stretch.first().is_some_and(|(s, _)| s.merges());
        let group = if merging {
            stretch.iter_mut().find(|(s, _)| *s == shape)
        } else {
            stretch.last_mut().filter(|(s, _)| *s == shape)
        };
        match group {
            Some((_, rows)) => rows.push(row),
            None if merging => stretch.push((shape, vec![row])),
            None => {
                flush(&mut stretch, &mut statements, keys)?;
                stretch.push((shape, vec![row]));
            }
        }
    }
    flush(&mut stretch, &mut statements, keys)?;
    Ok(statements)
}

/// The statements of a stretch, in shape order, each with its rows in key order.
fn flush(stretch: &mut Vec<(Shape, Vec<Row>)>, statements: &mut Vec<Query>, keys: &KeyProperties) -> Result<()> {
    stretch.sort_by_key(|(shape, _)| *shape);
    for (shape, mut rows) in stretch.drain(..) {
        // Stable: rows of one key keep their order.
        rows.sort_by_key(|r| r.order);
        statements.push(statement(shape, rows.into_iter().map(|r| r.row).collect(), keys)?);
    }
    Ok(())
}

/// One mutation as a row of its shape's statement, with the keys of the
/// nodes it locks, in the order it locks them.
struct Row<'a> {
    shape: Shape<'a>,
    order: (&'a str, &'a str),
    row: BoltType,
}

fn shape_and_row(m: &Mutation) -> Row<'_> {
    let mut row = BoltMap::with_capacity(3);
    let shape = match m {
        Mutation::MergeNode(n) => {
            row.put("key".into(), n.node.key.as_str().into());
            row.put("props".into(), properties(&n.set));
            Shape::MergeNode(&n.node.label)
        }
        Mutation::RemoveProperties(r) => {
            row.put("key".into(), r.node.key.as_str().into());
            let nulls = r.names.iter().map(|name| (name.as_str().into(), BoltType::Null(BoltNull))).collect();
            row.put("props".into(), BoltType::Map(BoltMap { value: nulls }));
            Shape::SetProperties(&r.node.label)
        }
        Mutation::DeleteNode(n) => {
            row.put("key".into(), n.key.as_str().into());
            Shape::DeleteNode(&n.label)
        }
        Mutation::MergeEdge(e) => {
            row.put("from".into(), e.edge.from.key.as_str().into());
            row.put("to".into(), e.edge.to.key.as_str().into());
            row.put("props".into(), properties(&e.set));
            Shape::MergeEdge(&e.edge.from.label, &e.edge.rel_type, &e.edge.to.label)
        }
        Mutation::DeleteEdge(e) => {
            row.put("from".into(), e.from.key.as_str().into());
            row.put("to".into(), e.to.key.as_str().into());
            Shape::DeleteEdge(&e.from.label, &e.rel_type, &e.to.label)
        }
        Mutation::DeleteEdges(e) => {
            row.put("from".into(), e.from.key.as_str().into());
            Shape::DeleteEdges(&e.from.label, &e.rel_type)
        }
    };
    let order = match m {
        Mutation::MergeNode(n) => (n.node.key.as_str(), ""),
        Mutation::RemoveProperties(r) => (r.node.key.as_str(), ""),
        Mutation::DeleteNode(n) => (n.key.as_str(), ""),
        Mutation::MergeEdge(e) => (e.edge.from.key.as_str(), e.edge.to.key.as_str()),
        Mutation::DeleteEdge(e) => (e.from.key.as_str(), e.to.key.as_str()),
        Mutation::DeleteEdges(e) => (e.from.key.as_str(), ""),
    };
    Row { shape, order, row: BoltType::Map(row) }
}

/// `(n:Label {key: row.<field>})` for a node pattern.
fn node(var: &str, label: &str, field: &str, keys: &KeyProperties) -> Result<String> {
    let key = keys.get(label).map_or("id", String::as_str);
    Ok(format!("({var}:{} {{{}: row.{field}}})", ident(label)?, ident(key)?))
}

fn statement(shape: Shape, rows: Vec<BoltType>, keys: &KeyProperties) -> Result<Query> {
    let body = match shape {
        Shape::MergeNode(l) => format!("MERGE {} SET n += row.props", node("n", l, "key", keys)?),
        Shape::SetProperties(l) => format!("MATCH {} SET n += row.props", node("n", l, "key", keys)?),
        Shape::DeleteNode(l) => format!("MATCH {} DETACH DELETE n", node("n", l, "key", keys)?),
        Shape::MergeEdge(a, t, b) => format!(
            "MERGE {} MERGE {} MERGE (a)-[r:{}]->(b) SET r += row.props",
            node("a", a, "from", keys)?,
            node("b", b, "to", keys)?,
            ident(t)?
        ),
        Shape::DeleteEdge(a, t, b) => format!(
            "MATCH {}-[r:{}]->{} DELETE r",
            node("a", a, "from", keys)?,
            ident(t)?,
            node("b", b, "to", keys)?
        ),
        Shape::DeleteEdges(a, t) => format!("MATCH {}-[r:{}]->() DELETE r", node("a", a, "from", keys)?, ident(t)?),
    };
    Ok(neo4rs::query(&format!("UNWIND $rows AS row {body}")).param("rows", BoltType::List(BoltList { value: rows })))
}

fn properties(set: &[Property]) -> BoltType {
    let map = set.iter().map(|p| (p.name.as_str().into(), value(&p.value))).collect();
    BoltType::Map(BoltMap { value: map })
}

fn value(v: &Value) -> BoltType {
    match v {
        Value::One(s) => scalar(s),
        Value::Many(list) => BoltType::List(BoltList { value: list.iter().map(scalar).collect() }),
    }
}

fn scalar(s: &Scalar) -> BoltType {
    match s {
        Scalar::Null => BoltType::Null(BoltNull),
        Scalar::Boolean(b) => (*b).into(),
        Scalar::Integer(i) => (*i).into(),
        Scalar::Float(f) => (*f).into(),
        Scalar::Text(t) => t.as_str().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EdgeMerge, EdgeRef, NodeMerge, NodeRef};

    fn merge(label: &str, key: &str) -> Mutation {
        Mutation::MergeNode(NodeMerge { node: NodeRef { label: label.into(), key: key.into() }, set: vec![] })
    }

    fn texts(ms: &[Mutation]) -> Vec<String> {
        let keys = KeyProperties::from([("A".into(), "name".into())]);
        mutations(ms.iter(), &keys).unwrap().iter().map(|q| q.query().to_owned()).collect()
    }

    fn edge(from: &str, to: &str) -> Mutation {
        Mutation::MergeEdge(EdgeMerge {
            edge: EdgeRef {
                from: NodeRef { label: "A".into(), key: from.into() },
                rel_type: "R".into(),
                to: NodeRef { label: "B".into(), key: to.into() },
            },
            set: vec![],
        })
    }

    const MERGE_A: &str = "UNWIND $rows AS row MERGE (n:`A` {`name`: row.key}) SET n += row.props";
    const MERGE_B: &str = "UNWIND $rows AS row MERGE (n:`B` {`id`: row.key}) SET n += row.props";
    const MERGE_R: &str = "UNWIND $rows AS row MERGE (a:`A` {`name`: row.from}) MERGE (b:`B` {`id`: row.to}) MERGE (a)-[r:`R`]->(b) SET r += row.props";

    #[test]
    fn merges_are_grouped_by_shape() {
        let ms = [merge("A", "1"), edge("1", "2"), merge("A", "3"), merge("B", "4"), edge("3", "4")];
        assert_eq!(texts(&ms), [MERGE_A, MERGE_B, MERGE_R]);
    }

    /// The keys of each statement's rows, in order.
    fn row_keys(ms: &[Mutation]) -> Vec<Vec<String>> {
        let field = |row: &BoltType, name: &str| match row {
            BoltType::Map(m) => m.value.get(name).map(|v| format!("{v:?}")).unwrap_or_default(),
            _ => String::new(),
        };
        mutations(ms.iter(), &KeyProperties::new())
            .unwrap()
            .iter()
            .map(|q| match q.get_params().value.get("rows") {
                Some(BoltType::List(rows)) => rows.value.iter().map(|r| field(r, "key") + &field(r, "from") + &field(r, "to")).collect(),
                _ => vec![],
            })
            .collect()
    }

    #[test]
    fn two_lanes_merging_the_same_nodes_lock_them_in_one_order() {
        // Two batches that touch the same keywords and edges in opposite orders.
        let one = [merge("A", "k2"), edge("k2", "t1"), merge("A", "k1"), edge("k1", "t1"), merge("B", "t1")];
        let other = [merge("B", "t1"), edge("k1", "t1"), merge("A", "k1"), edge("k2", "t1"), merge("A", "k2")];
        assert_eq!(row_keys(&one), row_keys(&other));
        assert_eq!(texts(&one), texts(&other));
        let keys = row_keys(&one);
        assert!(keys[0][0].contains("k1") && keys[0][1].contains("k2"), "{keys:?}");
    }

    #[test]
    fn rows_of_one_key_keep_their_order() {
        let set = |v: i64| {
            Mutation::MergeNode(NodeMerge {
                node: NodeRef { label: "A".into(), key: "k".into() },
                set: vec![Property { name: "v".into(), value: Value::One(Scalar::Integer(v)) }],
            })
        };
        let q = &mutations([set(1), merge("A", "a"), set(2)].iter(), &KeyProperties::new()).unwrap()[0];
        let Some(BoltType::List(rows)) = q.get_params().value.get("rows") else { panic!() };
        let shown: Vec<String> = rows.value.iter().map(|r| format!("{r:?}")).collect();
        let (first, second) = (shown.iter().position(|r| r.contains("Integer(BoltInteger { value: 1 })")), shown.iter().position(|r| r.contains("value: 2 }")));
        assert!(first < second && first.is_some(), "{shown:?}");
    }

    #[test]
    fn a_deletion_ends_a_stretch_of_merges() {
        let delete = Mutation::DeleteNode(NodeRef { label: "A".into(), key: "1".into() });
        let ms = [merge("A", "1"), delete.clone(), delete, merge("A", "1"), edge("1", "2")];
        assert_eq!(
            texts(&ms),
            [MERGE_A, "UNWIND $rows AS row MATCH (n:`A` {`name`: row.key}) DETACH DELETE n", MERGE_A, MERGE_R]
        );
    }

    #[test]
    fn values_never_enter_the_query_text() {
        let evil = "x'}) DETACH DELETE n //`";
        let ms = [merge("A", evil)];
        let q = &mutations(ms.iter(), &KeyProperties::new()).unwrap()[0];
        assert!(!q.query().contains(evil));
        assert!(q.has_param_key("rows"));
    }

    #[test]
    fn names_outside_the_identifier_rules_are_refused() {
        for bad in ["Bad Label", "A`) DETACH DELETE n //", "", "1st"] {
            let err = mutations([merge(bad, "k")].iter(), &KeyProperties::new()).unwrap_err().to_string();
            assert!(err.contains("is not a valid label"), "{err}");
        }
    }
}
