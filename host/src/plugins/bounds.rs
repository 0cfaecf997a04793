//! Output bounds: what one event's mutations may add up to. Past them the event
//! fails permanently, with a message that names the bound.

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
            .map(|p| match size(p) {
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
