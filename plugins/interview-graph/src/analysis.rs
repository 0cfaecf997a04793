//! Analysis events: the Analysis node and its links to dimension nodes.

use projector_sdk::*;

use crate::events::{Analysis, AnalysisCleared};

/// A dimension of an analysis: the label of its nodes and the relationship to them.
pub struct Dimension {
    pub label: &'static str,
    pub rel_type: &'static str,
}

pub const DIMENSIONS: [Dimension; 6] = [
    Dimension { label: "Keyword", rel_type: "MENTIONS_KEYWORD" },
    Dimension { label: "Topic", rel_type: "MENTIONS_TOPIC" },
    Dimension { label: "DomainKeyword", rel_type: "MENTIONS_DOMAIN_KEYWORD" },
    Dimension { label: "FunctionType", rel_type: "HAS_FUNCTION_TYPE" },
    Dimension { label: "StructureType", rel_type: "HAS_STRUCTURE_TYPE" },
    Dimension { label: "Purpose", rel_type: "HAS_PURPOSE" },
];

/// The values of each dimension that an event gives, in `DIMENSIONS` order;
/// `None` leaves that dimension as it is.
fn dimension_values(a: &mut Analysis) -> [Option<Vec<String>>; 6] {
    let (function, structure, purpose) = match a.classification.take() {
        Some(c) => (Some(c.function_type), Some(c.structure_type), Some(c.purpose)),
        None => (None, None, None),
    };
    let list = |v: Option<Option<String>>| v.map(|one| one.into_iter().collect());
    [
        a.keywords.take(),
        a.topics.take(),
        a.domain_keywords.take(),
        list(function),
        list(structure),
        list(purpose),
    ]
}

/// Replace the links of every dimension the event gives.
fn link_dimensions(analysis: &NodeRef, values: [Option<Vec<String>>; 6], out: &mut Vec<Mutation>) {
    for (dim, values) in DIMENSIONS.iter().zip(values) {
        let Some(values) = values else { continue };
        out.push(delete_edges(analysis.clone(), dim.rel_type));
        for value in values {
            out.push(merge_edge(analysis.clone(), dim.rel_type, node(dim.label, value)).into());
        }
    }
}

pub fn generated(event: &Event) -> Outcome {
    let mut a: Analysis = event.data()?;
    let analysis = node("Analysis", &a.sentence_id);
    let mut out = vec![
        merge_node("Analysis", &a.sentence_id)
            .set("model", a.model.take())
            .set("model_version", a.model_version.take())
            .set("confidence", a.confidence)
            .set("overridden", false)
            .into(),
        merge_edge(node("Sentence", &a.sentence_id), "HAS_ANALYSIS", analysis.clone()).into(),
    ];
    link_dimensions(&analysis, dimension_values(&mut a), &mut out);
    Ok(out)
}

pub fn overridden(event: &Event) -> Outcome {
    let mut a: Analysis = event.data()?;
    let analysis = node("Analysis", &a.sentence_id);
    let mut out = vec![
        merge_node("Analysis", &a.sentence_id)
            .set("overridden", true)
            .set("overridden_by", event.actor())
            .set("override_note", a.note.take())
            .into(),
        merge_edge(node("Sentence", &a.sentence_id), "HAS_ANALYSIS", analysis.clone()).into(),
    ];
    link_dimensions(&analysis, dimension_values(&mut a), &mut out);
    Ok(out)
}

pub fn cleared(event: &Event) -> Outcome {
    let e: AnalysisCleared = event.data()?;
    Ok(vec![delete_node(node("Analysis", e.sentence_id))])
}
