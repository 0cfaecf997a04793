//! Output bounds: what one event's mutations may add up to. Past them the event
//! fails permanently, with a message that names the bound.

use crate::runtime::limits::{MAX_MUTATIONS_PER_EVENT, MAX_VALUE_BYTES};
use crate::{Mutation, Property, Scalar, Value};

pub fn check(mutations: &[Mutation]) -> Result<(), String> {
    if mutations.len() > MAX_MUTATIONS_PER_EVENT {
        return Err(format!(
            "output bound: {} mutations for one event, more than the {MAX_MUTATIONS_PER_EVENT} allowed",
            mutations.len()
        ));
    }
    for m in mutations {
        let set = match m {
            Mutation::MergeNode(n) => &n.set,
            Mutation::MergeEdge(e) => &e.set,
            _ => continue,
        };
        if let Some(p) = set.iter().find(|p| size(p) > MAX_VALUE_BYTES) {
            return Err(format!(
                "output bound: property `{}` holds {} bytes, more than the {MAX_VALUE_BYTES} allowed",
                p.name,
                size(p)
            ));
        }
    }
    Ok(())
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
