//! Output bounds: what one event's mutations may add up to, and what a
//! property may hold. Past them the event fails permanently, with a message
//! that names the bound or the rule.

use crate::runtime::limits::{MAX_MUTATIONS_PER_EVENT, MAX_OUTPUT_BYTES_PER_EVENT, MAX_VALUE_BYTES};
use crate::{Mutation, NodeRef, Property, Scalar, Value};

pub fn check(mutations: &[Mutation]) -> Result<(), String> {
    if mutations.len() > MAX_MUTATIONS_PER_EVENT {
        return Err(format!(
            "output bound: {} mutations for one event, more than the {MAX_MUTATIONS_PER_EVENT} allowed",
            mutations.len()
        ));
    }
    let total = mutations.iter().map(weigh).sum::<Result<usize, String>>()?;
    if total > MAX_OUTPUT_BYTES_PER_EVENT {
        return Err(format!(
            "output bound: {total} bytes of mutations for one event, more than the {MAX_OUTPUT_BYTES_PER_EVENT} allowed"
        ));
    }
    Ok(())
}

/// What a mutation weighs (its labels, keys, names and values), refusing a
/// property value past its own bound.
fn weigh(m: &Mutation) -> Result<usize, String> {
    let node = |n: &NodeRef| n.label.len() + n.key.len();
    let set = |props: &[Property]| -> Result<usize, String> {
        props
            .iter()
            .map(|p| match list_rule(p).and_then(|()| finite_rule(p)).map(|()| size(p))? {
                bytes if bytes > MAX_VALUE_BYTES => Err(format!(
                    "output bound: property `{}` holds {bytes} bytes, more than the {MAX_VALUE_BYTES} allowed",
                    p.name
                )),
                bytes => Ok(p.name.len() + bytes),
            })
            .sum()
    };
    Ok(match m {
        Mutation::MergeNode(n) => node(&n.node) + set(&n.set)?,
        Mutation::RemoveProperties(r) => node(&r.node) + r.names.iter().map(String::len).sum::<usize>(),
        Mutation::DeleteNode(n) => node(n),
        Mutation::MergeEdge(e) => node(&e.edge.from) + e.edge.rel_type.len() + node(&e.edge.to) + set(&e.set)?,
        Mutation::DeleteEdge(e) => node(&e.from) + e.rel_type.len() + node(&e.to),
        Mutation::DeleteEdges(e) => node(&e.from) + e.rel_type.len(),
    })
}

/// One rule for lists in every sink, Neo4j's: a list holds values of one
/// type (booleans, integers, floats or texts), and no null. Neo4j refuses
/// other lists, or stores integers mixed with floats as floats, so a graph
/// that held them would differ from sink to sink.
fn list_rule(p: &Property) -> Result<(), String> {
    let Value::Many(list) = &p.value else { return Ok(()) };
    let kind = |s: &Scalar| match s {
        Scalar::Null => "null",
        Scalar::Boolean(_) => "boolean",
        Scalar::Integer(_) => "integer",
        Scalar::Float(_) => "float",
        Scalar::Text(_) => "text",
    };
    if list.iter().any(|s| matches!(s, Scalar::Null)) {
        return Err(format!("property `{}`: a list may not hold null (Neo4j stores no null in a list)", p.name));
    }
    match list.iter().find(|s| kind(s) != kind(&list[0])) {
        Some(other) => Err(format!(
            "property `{}`: a list holds values of one type, and this one mixes {} and {} (Neo4j refuses such lists, or turns integers among floats into floats)",
            p.name,
            kind(&list[0]),
            kind(other)
        )),
        None => Ok(()),
    }
}

/// A float is a number: NaN and the infinities are refused, since the
/// embedded sink's JSON cannot hold them (it would drop the property) while
/// Neo4j stores them.
fn finite_rule(p: &Property) -> Result<(), String> {
    let scalars = match &p.value {
        Value::One(s) => std::slice::from_ref(s),
        Value::Many(list) => list.as_slice(),
    };
    match scalars.iter().find(|s| matches!(s, Scalar::Float(f) if !f.is_finite())) {
        Some(Scalar::Float(f)) => Err(format!("property `{}`: {f} is not a number every sink can store (only finite floats are)", p.name)),
        _ => Ok(()),
    }
}

fn size(p: &Property) -> usize {
    let scalar = |s: &Scalar| match s {
        Scalar::Text(t) => t.len(),
        _ => 8,
    };
    match &p.value {
        Value::One(s) => scalar(s),
        Value::Many(list) => list.iter().map(scalar).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeMerge;

    fn merge(name: &str, value: Value) -> Vec<Mutation> {
        let node = NodeRef { label: "Sentence".into(), key: "s-1".into() };
        vec![Mutation::MergeNode(NodeMerge { node, set: vec![Property { name: name.into(), value }] })]
    }

    #[test]
    fn a_list_holds_values_of_one_type_and_no_null_in_every_sink() {
        use Scalar::*;
        for ok in [vec![], vec![Text("a".into()), Text("b".into())], vec![Integer(1), Integer(2)], vec![Float(0.5)], vec![Boolean(true)]] {
            assert_eq!(check(&merge("tags", Value::Many(ok.clone()))), Ok(()), "{ok:?}");
        }
        let mixed = check(&merge("tags", Value::Many(vec![Integer(1), Float(2.5)]))).unwrap_err();
        assert!(mixed.contains("property `tags`") && mixed.contains("mixes integer and float"), "{mixed}");
        let null = check(&merge("scores", Value::Many(vec![Float(0.5), Null]))).unwrap_err();
        assert!(null.contains("may not hold null"), "{null}");
        assert_eq!(check(&merge("speaker", Value::One(Null))), Ok(()), "a null outside a list removes the property");
    }

    #[test]
    fn a_float_that_is_not_a_finite_number_is_refused_alone_or_in_a_list() {
        use Scalar::*;
        for bad in [Value::One(Float(f64::NAN)), Value::One(Float(f64::INFINITY)), Value::Many(vec![Float(1.0), Float(f64::NEG_INFINITY)])] {
            let refused = check(&merge("confidence", bad)).unwrap_err();
            assert!(refused.contains("property `confidence`") && refused.contains("only finite floats"), "{refused}");
        }
        assert_eq!(check(&merge("confidence", Value::One(Float(0.93)))), Ok(()));
    }
}
