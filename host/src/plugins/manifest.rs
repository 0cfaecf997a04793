//! What a manifest may declare. A plugin describes itself, and a hostile one
//! could describe a million labels or names of a megabyte, which every log
//! line, `plugins list` and each write-scope check would carry. Past these
//! limits the plugin is refused at load, with the limit named.

use anyhow::{bail, Result};

use super::scope::is_identifier;
use crate::{Manifest, PartitionKey, UpcasterManifest};

/// The longest name: of a plugin, version, label, key property, relationship
/// type, event type, stream prefix or partition-key pointer, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// The most labels a projection may declare.
pub const MAX_LABELS: usize = 256;
/// The most relationship types a projection may declare.
pub const MAX_RELATIONSHIP_TYPES: usize = 256;
/// The most event types, and the most stream prefixes, a projection may subscribe to.
pub const MAX_SUBSCRIPTIONS: usize = 1024;
/// The most schema steps an upcaster may declare.
pub const MAX_UPGRADES: usize = 1024;
/// The most bytes of all the manifest's names together.
pub const MAX_MANIFEST_BYTES: usize = 64 << 10;

/// Checks one name: not too long, no control characters (it is printed).
fn name(what: &str, text: &str, total: &mut usize) -> Result<()> {
    if text.chars().any(crate::telemetry::hidden) {
        bail!("its {what} {:?} holds control or invisible characters", text.chars().take(64).collect::<String>());
    }
    if text.len() > MAX_NAME_BYTES {
        bail!("its {what} `{}...` is {} bytes, more than MAX_NAME_BYTES ({MAX_NAME_BYTES})", text.chars().take(32).collect::<String>(), text.len());
    }
    *total += text.len();
    if *total > MAX_MANIFEST_BYTES {
        bail!("its names come to more than MAX_MANIFEST_BYTES ({MAX_MANIFEST_BYTES} bytes)");
    }
    Ok(())
}

/// A plugin's name: it names checkpoints, read models and log lines.
fn plugin_name(name: &str) -> Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("name `{name}` must be non-empty and use only letters, digits, `-` and `_`");
    }
    Ok(())
}

fn count(what: &str, n: usize, limit: usize, constant: &str) -> Result<()> {
    if n > limit {
        bail!("it declares {n} {what}, more than {constant} ({limit})");
    }
    Ok(())
}

/// A projection's manifest: within the limits, and well formed.
pub fn check_projection(m: &Manifest) -> Result<()> {
    count("labels", m.labels.len(), MAX_LABELS, "MAX_LABELS")?;
    count("relationship types", m.relationship_types.len(), MAX_RELATIONSHIP_TYPES, "MAX_RELATIONSHIP_TYPES")?;
    count("event types", m.event_types.len(), MAX_SUBSCRIPTIONS, "MAX_SUBSCRIPTIONS")?;
    count("stream prefixes", m.stream_prefixes.len(), MAX_SUBSCRIPTIONS, "MAX_SUBSCRIPTIONS")?;
    let total = &mut 0;
    name("name", &m.name, total)?;
    name("version", &m.version, total)?;
    for decl in &m.labels {
        name("label", &decl.label, total)?;
        name("key property", &decl.key_property, total)?;
    }
    for t in &m.relationship_types {
        name("relationship type", t, total)?;
    }
    for t in &m.event_types {
        name("event type", t, total)?;
    }
    for p in &m.stream_prefixes {
        name("stream prefix", p, total)?;
    }
    if let PartitionKey::DataPointer(p) | PartitionKey::MetadataPointer(p) = &m.partition_key {
        name("partition key", p, total)?;
    }

    plugin_name(&m.name)?;
    for decl in &m.labels {
        for (what, name) in [("label", &decl.label), ("key property", &decl.key_property)] {
            if !is_identifier(name) {
                bail!("{what} `{name}` is not an identifier (a letter, then letters, digits or `_`)");
            }
        }
    }
    if let Some(bad) = m.relationship_types.iter().find(|t| !is_identifier(t)) {
        bail!("relationship type `{bad}` is not an identifier (a letter, then letters, digits or `_`)");
    }
    match &m.partition_key {
        PartitionKey::DataPointer(p) | PartitionKey::MetadataPointer(p) if !p.starts_with('/') => {
            bail!("partition key `{p}` is not a JSON pointer: it must start with `/`, e.g. `/interview_id`")
        }
        _ => Ok(()),
    }
}

/// An upcaster's manifest: within the limits, with at least one step.
pub fn check_upcaster(m: &UpcasterManifest) -> Result<()> {
    count("upgrades", m.upgrades.len(), MAX_UPGRADES, "MAX_UPGRADES")?;
    let total = &mut 0;
    name("name", &m.name, total)?;
    name("version", &m.version, total)?;
    for step in &m.upgrades {
        name("upgraded event type", &step.event_type, total)?;
    }
    if m.upgrades.is_empty() {
        bail!("it declares no upgrades");
    }
    plugin_name(&m.name)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LabelDecl, Upgrade};

    fn manifest() -> Manifest {
        Manifest {
            name: "p".into(),
            version: "1".into(),
            read_model_version: 1,
            event_types: vec![],
            stream_prefixes: vec![],
            partition_key: PartitionKey::ByStream,
            labels: vec![],
            relationship_types: vec![],
        }
    }

    fn refusal(m: &Manifest) -> String {
        format!("{:#}", check_projection(m).unwrap_err())
    }

    #[test]
    fn every_limit_refuses_past_it_and_names_itself() {
        assert!(check_projection(&manifest()).is_ok());
        let label = |i: usize| LabelDecl { label: format!("L{i}"), key_property: "id".into(), shared: false };
        let mut m = manifest();
        m.labels = (0..=MAX_LABELS).map(label).collect();
        assert!(refusal(&m).contains("MAX_LABELS"));
        m.labels.pop();
        assert!(check_projection(&m).is_ok(), "at the limit is fine");

        let mut m = manifest();
        m.relationship_types = (0..=MAX_RELATIONSHIP_TYPES).map(|i| format!("R{i}")).collect();
        assert!(refusal(&m).contains("MAX_RELATIONSHIP_TYPES"));
        let mut m = manifest();
        m.event_types = (0..=MAX_SUBSCRIPTIONS).map(|i| format!("T{i}")).collect();
        assert!(refusal(&m).contains("MAX_SUBSCRIPTIONS"));
        let mut m = manifest();
        m.stream_prefixes = (0..=MAX_SUBSCRIPTIONS).map(|i| format!("s{i}-")).collect();
        assert!(refusal(&m).contains("MAX_SUBSCRIPTIONS"));

        let mut m = manifest();
        m.version = "v".repeat(MAX_NAME_BYTES + 1);
        assert!(refusal(&m).contains("MAX_NAME_BYTES"));
        let mut m = manifest();
        m.event_types = (0..MAX_SUBSCRIPTIONS).map(|i| format!("{i:0>200}")).collect();
        assert!(refusal(&m).contains("MAX_MANIFEST_BYTES"));
        let mut m = manifest();
        m.event_types = vec!["Evil\x1b[2J".into()];
        assert!(refusal(&m).contains("control or invisible characters"));
        m.event_types = vec!["a\u{202E}b".into()];
        assert!(refusal(&m).contains("invisible"));

        let upcaster = |n: usize| UpcasterManifest {
            name: "u".into(),
            version: "1".into(),
            upgrades: (0..n).map(|i| Upgrade { event_type: format!("T{i}"), from_version: 1 }).collect(),
        };
        assert!(check_upcaster(&upcaster(1)).is_ok());
        assert!(format!("{:#}", check_upcaster(&upcaster(MAX_UPGRADES + 1)).unwrap_err()).contains("MAX_UPGRADES"));
        assert!(format!("{:#}", check_upcaster(&upcaster(0)).unwrap_err()).contains("no upgrades"));
    }
}
