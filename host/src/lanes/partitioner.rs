//! Partition keys and the stable hash that maps a key to a lane.

use xxhash_rust::xxh3::xxh3_64;

use crate::{Event, PartitionKey};

/// The partition key of an event, or why it has none.
pub fn partition_key(rule: &PartitionKey, event: &Event) -> Result<String, String> {
    let (part, doc, pointer) = match rule {
        PartitionKey::ByStream => return Ok(event.stream.clone()),
        PartitionKey::DataPointer(p) => ("data", &event.data, p),
        PartitionKey::MetadataPointer(p) => ("metadata", &event.metadata, p),
    };
    let json: serde_json::Value =
        serde_json::from_str(doc).map_err(|e| format!("cannot read the partition key: {part} is not JSON: {e}"))?;
    match json.pointer(pointer) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => Ok(v.to_string()),
        _ => Err(format!("cannot read the partition key: {part} has no string or number at `{pointer}`")),
    }
}

/// The lane for a key: a hash that is the same in every process and version.
pub fn lane_of(key: &str, lanes: usize) -> usize {
    (xxh3_64(key.as_bytes()) % lanes.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXED: [usize; 4] = [3, 1, 2, 10];

    fn event(data: &str) -> Event {
        Event {
            id: "e".into(),
            stream: "Sentence-1".into(),
            event_type: "T".into(),
            schema_version: 1,
            revision: 0,
            position: 1,
            data: data.into(),
            metadata: "{}".into(),
        }
    }

    #[test]
    fn keys_come_from_the_stream_or_a_pointer() {
        let e = event(r#"{"interview_id": "i-7", "n": 3}"#);
        assert_eq!(partition_key(&PartitionKey::ByStream, &e).unwrap(), "Sentence-1");
        assert_eq!(partition_key(&PartitionKey::DataPointer("/interview_id".into()), &e).unwrap(), "i-7");
        assert_eq!(partition_key(&PartitionKey::DataPointer("/n".into()), &e).unwrap(), "3");
        let missing = partition_key(&PartitionKey::DataPointer("/nope".into()), &e).unwrap_err();
        assert!(missing.contains("/nope"), "{missing}");
    }

    #[test]
    fn the_lane_of_a_key_is_stable_and_spread() {
        // Fixed values: a change here would move keys between lanes across versions,
        // and a restarted host would then apply a key's events on two lanes.
        let lanes: Vec<usize> = ["Interview-1", "Interview-2", "Sentence-1", ""].iter().map(|k| lane_of(k, 12)).collect();
        assert_eq!(lanes, FIXED);
        let on_lane_0 = (0..1200).filter(|i| lane_of(&format!("k{i}"), 4) == 0).count();
        assert!((240..360).contains(&on_lane_0), "{on_lane_0} of 1200 keys on one of 4 lanes");
    }
}
