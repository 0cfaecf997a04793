//! Builders for mutations: `merge_node("Interview", id).set("title", t).into()`.

use crate::{
    EdgeMerge, EdgeRef, EdgesFrom, Mutation, NodeMerge, NodeRef, Property, PropertyRemoval, Value,
};

/// The identity of a node: its label and key.
pub fn node(label: &str, key: impl Into<String>) -> NodeRef {
    NodeRef { label: label.to_owned(), key: key.into() }
}

/// Merge a node; chain `.set(name, value)` to set its properties.
pub fn merge_node(label: &str, key: impl Into<String>) -> NodeMerge {
    NodeMerge { node: node(label, key), set: Vec::new() }
}

/// Merge a relationship and both its end nodes; chain `.set` for its properties.
pub fn merge_edge(from: NodeRef, rel_type: &str, to: NodeRef) -> EdgeMerge {
    EdgeMerge { edge: EdgeRef { from, rel_type: rel_type.to_owned(), to }, set: Vec::new() }
}

/// Delete a node and every relationship it has.
pub fn delete_node(node: NodeRef) -> Mutation {
    Mutation::DeleteNode(node)
}

/// Delete one relationship.
pub fn delete_edge(from: NodeRef, rel_type: &str, to: NodeRef) -> Mutation {
    Mutation::DeleteEdge(EdgeRef { from, rel_type: rel_type.to_owned(), to })
}

/// Delete every relationship of `rel_type` that leaves `from`.
pub fn delete_edges(from: NodeRef, rel_type: &str) -> Mutation {
    Mutation::DeleteEdges(EdgesFrom { from, rel_type: rel_type.to_owned() })
}

/// Remove the named properties from a node.
pub fn remove_properties(node: NodeRef, names: &[&str]) -> Mutation {
    Mutation::RemoveProperties(PropertyRemoval {
        node,
        names: names.iter().map(|n| (*n).to_owned()).collect(),
    })
}

fn property(name: &str, value: impl Into<Value>) -> Property {
    Property { name: name.to_owned(), value: value.into() }
}

impl NodeMerge {
    /// Set a property on the node.
    pub fn set(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.set.push(property(name, value));
        self
    }
}

impl EdgeMerge {
    /// Set a property on the relationship.
    pub fn set(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.set.push(property(name, value));
        self
    }
}

impl From<NodeMerge> for Mutation {
    fn from(m: NodeMerge) -> Self {
        Mutation::MergeNode(m)
    }
}

impl From<EdgeMerge> for Mutation {
    fn from(m: EdgeMerge) -> Self {
        Mutation::MergeEdge(m)
    }
}
