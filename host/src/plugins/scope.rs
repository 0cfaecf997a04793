//! Write scope: a projection writes only the labels and relationship types its
//! manifest declares. A mutation outside them fails its event, permanently.

use std::collections::{HashMap, HashSet};

use crate::{Manifest, Mutation, NodeRef};

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
