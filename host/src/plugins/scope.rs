//! Write scope: a projection writes only the labels and relationship types its
//! manifest declares. A mutation outside them fails its event, permanently.

use std::collections::{HashMap, HashSet};

use crate::{LabelDecl, Manifest, Mutation, NodeRef};

/// Whether `name` may be a label, relationship type or property key: a letter,
/// then letters, digits or `_`. Such names need no escaping in Cypher.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The labels (with their key properties) and relationship types a projection may write.
#[derive(Debug, Clone, Default)]
pub struct WriteScope {
    pub labels: HashMap<String, String>,
    pub relationship_types: HashSet<String>,
}

/// Refuses two projections that write one label unless both declare it
/// shared with the same key property: a projection's nodes are its own.
pub fn check_sharing<'a>(manifests: impl IntoIterator<Item = &'a Manifest>) -> Result<(), String> {
    let mut owners: HashMap<&str, (&str, &LabelDecl)> = HashMap::new();
    for m in manifests {
        for decl in &m.labels {
            let Some((other, theirs)) = owners.insert(&decl.label, (&m.name, decl)) else { continue };
            let label = &decl.label;
            if !(decl.shared && theirs.shared) {
                return Err(format!(
                    "projections `{other}` and `{}` both write label `{label}`; a label belongs to one projection unless both declare it shared \
                     (`shared_label` in the Rust SDK, `shared: true` in the manifest), or give one of them a label of its own",
                    m.name
                ));
            }
            if decl.key_property != theirs.key_property {
                return Err(format!(
                    "projections `{other}` and `{}` share label `{label}` but key it by `{}` and `{}`; shared nodes need one key property",
                    m.name, theirs.key_property, decl.key_property
                ));
            }
        }
    }
    Ok(())
}

impl WriteScope {
    pub fn of(manifest: &Manifest) -> Self {
        Self {
            labels: manifest.labels.iter().map(|d| (d.label.clone(), d.key_property.clone())).collect(),
            relationship_types: manifest.relationship_types.iter().cloned().collect(),
        }
    }

    /// Refuses the first mutation that leaves the scope, saying what was undeclared.
    pub fn check(&self, mutations: &[Mutation]) -> Result<(), String> {
        for m in mutations {
            match m {
                Mutation::MergeNode(n) => self.node(&n.node)?,
                Mutation::RemoveProperties(r) => self.node(&r.node)?,
                Mutation::DeleteNode(n) => self.node(n)?,
                Mutation::MergeEdge(e) => self.edge(&e.edge.from, &e.edge.rel_type, &e.edge.to)?,
                Mutation::DeleteEdge(e) => self.edge(&e.from, &e.rel_type, &e.to)?,
                Mutation::DeleteEdges(e) => {
                    self.node(&e.from)?;
                    self.rel_type(&e.rel_type)?
                }
            }
        }
        Ok(())
    }

    fn node(&self, node: &NodeRef) -> Result<(), String> {
        if self.labels.contains_key(&node.label) {
            Ok(())
        } else {
            Err(format!("write outside scope: label `{}` is not declared in the manifest", node.label))
        }
    }

    fn rel_type(&self, rel_type: &str) -> Result<(), String> {
        if self.relationship_types.contains(rel_type) {
            Ok(())
        } else {
            Err(format!("write outside scope: relationship type `{rel_type}` is not declared in the manifest"))
        }
    }

    fn edge(&self, from: &NodeRef, rel_type: &str, to: &NodeRef) -> Result<(), String> {
        self.node(from)?;
        self.rel_type(rel_type)?;
        self.node(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PartitionKey;

    fn manifest(name: &str, labels: &[(&str, &str, bool)]) -> Manifest {
        Manifest {
            name: name.into(),
            version: "1".into(),
            read_model_version: 1,
            event_types: vec![],
            stream_prefixes: vec![],
            partition_key: PartitionKey::ByStream,
            labels: labels.iter().map(|&(l, k, shared)| LabelDecl { label: l.into(), key_property: k.into(), shared }).collect(),
            relationship_types: vec![],
        }
    }

    #[test]
    fn a_label_belongs_to_one_projection_unless_both_share_it_by_one_key() {
        let graph = manifest("graph", &[("Interview", "id", true), ("Sentence", "id", false)]);
        let audit = |shared, key| manifest("audit", &[("Interview", key, shared), ("Change", "id", false)]);
        assert_eq!(check_sharing([&graph, &audit(true, "id")]), Ok(()));
        let refused = check_sharing([&graph, &audit(false, "id")]).unwrap_err();
        assert!(refused.contains("`graph` and `audit` both write label `Interview`"), "{refused}");
        let refused = check_sharing([&graph, &audit(true, "uuid")]).unwrap_err();
        assert!(refused.contains("key it by `id` and `uuid`"), "{refused}");
        let thief = manifest("thief", &[("Sentence", "id", true)]);
        assert!(check_sharing([&graph, &thief]).is_err(), "one side's `shared` is not enough");
    }
}
