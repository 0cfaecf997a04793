//! Mapping: an EventStoreDB record into the host's event. The envelope
//! (actor, correlation id, causation id, schema version, ...) travels in the
//! record's user metadata, a JSON object, as the system Projector grew out of
//! wrote it.

use eventstore::{Position, RecordedEvent, ResolvedEvent};

use super::position;
use crate::Event;

/// Metadata keys read as the schema version of `data`, first match wins. A
/// number or a string like `"2"` or `"v2"`; without one the version is 1.
pub const SCHEMA_VERSION_KEYS: [&str; 4] = ["schema_version", "schemaVersion", "event_version", "eventVersion"];

/// Why a record is not given to projections. Each is counted and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    /// A server event (type starting with `$`): stream metadata, settings, links.
    System,
    /// Data the server holds as binary, not JSON.
    NotJson,
    /// Data or metadata that is not UTF-8 text.
    NotText,
    /// A link whose event is gone (deleted, or scavenged).
    Unresolved,
}

impl Skip {
    pub fn reason(self) -> &'static str {
        match self {
            Skip::System => "a system event (type starts with `$`)",
            Skip::NotJson => "its content type is not JSON",
            Skip::NotText => "its data or metadata is not UTF-8 text",
            Skip::Unresolved => "a link to an event that no longer exists",
        }
    }
}

/// What becomes of one record.
#[derive(Debug, PartialEq)]
pub enum Mapped {
    Event(Event),
    Skipped(Skip),
}

/// Maps a record. An error means its position cannot be numbered, which stops
/// the source (a wrong position would break the order every checkpoint relies on).
///
/// Data marked JSON that does not parse is mapped all the same: projections
/// that subscribe to it park it with the reason, as they do with any malformed
/// event, so that nothing disappears without a trace.
pub fn map(record: &RecordedEvent) -> Result<Mapped, String> {
    let position = position::to_host(record.position)
        .map_err(|why| format!("event {} (stream {}, revision {}): {why}", record.id, record.stream_id, record.revision))?;
    if record.event_type.starts_with('$') {
        return Ok(Mapped::Skipped(Skip::System));
    }
    if !record.is_json {
        return Ok(Mapped::Skipped(Skip::NotJson));
    }
    let (Ok(data), Ok(metadata)) = (std::str::from_utf8(&record.data), std::str::from_utf8(&record.custom_metadata)) else {
        return Ok(Mapped::Skipped(Skip::NotText));
    };
    let metadata = if metadata.trim().is_empty() { "{}" } else { metadata };
    Ok(Mapped::Event(Event {
        id: record.id.to_string(),
        stream: record.stream_id.clone(),
        event_type: record.event_type.clone(),
        schema_version: schema_version(metadata),
        revision: record.revision,
        position,
        data: data.to_owned(),
        metadata: metadata.to_owned(),
    }))
}

/// What a persistent subscription delivered, as the host takes it.
#[derive(Debug)]
pub struct Delivery<'a> {
    /// The event to project: the delivered record, or the event a link
    /// stands for (the server replays parked events as links to them).
    pub record: &'a RecordedEvent,
    /// The event's own position in `$all`, where the delivery says it;
    /// `None` where it must be looked up.
    pub position: Option<Position>,
    /// The delivered record's id, the one the server settles it by.
    pub id: uuid::Uuid,
}

/// Reads a delivery. A plain event carries its position. A replayed parked
/// event is a link (`$>` in the group's parked stream) resolved to its event,
/// and which position the server sends with it depends on its version:
/// 21.x the event's own, 22.x and 23.x none (-1), 24.x and later the link's.
/// Only an event's own is taken; the others are looked up.
/// `None`: a link whose event is gone.
pub fn delivery(resolved: &ResolvedEvent) -> Option<Delivery<'_>> {
    let id = resolved.get_original_event().id;
    match (&resolved.event, &resolved.link) {
        (Some(event), None) => Some(Delivery { record: event, position: Some(event.position), id }),
        (Some(event), Some(link)) => {
            let own = position::is_known(event.position) && event.position != link.position;
            Some(Delivery { record: event, position: own.then_some(event.position), id })
        }
        (None, _) => None,
    }
}

/// The schema version the envelope states, or 1.
pub fn schema_version(metadata: &str) -> u32 {
    let Ok(serde_json::Value::Object(envelope)) = serde_json::from_str(metadata) else { return 1 };
    let stated = SCHEMA_VERSION_KEYS.iter().find_map(|k| envelope.get(*k));
    let version = match stated {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim_start_matches(['v', 'V']).parse().ok(),
        _ => None,
    };
    version.and_then(|v| u32::try_from(v).ok()).filter(|v| *v > 0).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventstore::Position;

    fn record(event_type: &str, is_json: bool, data: &[u8], metadata: &[u8]) -> RecordedEvent {
        RecordedEvent {
            stream_id: "Interview-1".into(),
            id: uuid::Uuid::from_u128(7),
            revision: 3,
            event_type: event_type.into(),
            data: data.to_vec().into(),
            metadata: Default::default(),
            custom_metadata: metadata.to_vec().into(),
            is_json,
            position: Position { commit: 4_096, prepare: 4_096 },
            created: Default::default(),
        }
    }

    /// A parked event replayed by a server: the link in the group's parked
    /// stream, resolved to the event, with the positions that server version sends.
    fn replayed(event_at: Position, link_at: Position) -> ResolvedEvent {
        let mut event = record("SentenceEdited", true, br#"{"text":"hi"}"#, b"");
        event.position = event_at;
        let link = RecordedEvent {
            stream_id: "$persistentsubscription-$all::projector-interview-parked".into(),
            id: uuid::Uuid::from_u128(99),
            revision: 0,
            event_type: "$>".into(),
            data: b"3@Interview-1".to_vec().into(),
            position: link_at,
            ..record("$>", false, b"", b"")
        };
        ResolvedEvent { event: Some(event), link: Some(link), commit_position: None }
    }

    #[test]
    fn a_replayed_parked_event_is_its_event_settled_by_the_links_id() {
        let own = Position { commit: 4_096, prepare: 4_096 };
        let link_at = Position { commit: 90_112, prepare: 90_112 };
        let none = Position { commit: position::NO_POSITION, prepare: position::NO_POSITION };
        for (server, event_at, link_at, expected) in [
            ("21.10", own, link_at, Some(own)),
            ("23.10", none, none, None),
            ("24.10", link_at, link_at, None),
        ] {
            let resolved = replayed(event_at, link_at);
            let d = delivery(&resolved).unwrap();
            assert_eq!((d.record.event_type.as_str(), d.id), ("SentenceEdited", uuid::Uuid::from_u128(99)), "{server}");
            assert_eq!(d.position, expected, "{server}");
            // Before, the link itself was mapped: a system event, acknowledged
            // and gone, or a record without a position, which stopped the group.
            let before = map(resolved.get_original_event());
            if server == "23.10" {
                assert!(before.unwrap_err().contains("no position"), "{server}");
            } else {
                assert_eq!(before, Ok(Mapped::Skipped(Skip::System)), "{server}");
            }
        }
        let plain = ResolvedEvent { event: Some(record("SentenceEdited", true, b"{}", b"")), link: None, commit_position: Some(4_096) };
        assert_eq!(delivery(&plain).unwrap().position, Some(own));
        let gone = ResolvedEvent { event: None, ..replayed(own, link_at) };
        assert!(delivery(&gone).is_none());
    }

    #[test]
    fn a_json_record_becomes_an_event_with_its_envelope() {
        let envelope = br#"{"actor":"ana","correlation_id":"c-1","causation_id":"k-9","schema_version":2}"#;
        let Mapped::Event(e) = map(&record("SentenceEdited", true, br#"{"text":"hi"}"#, envelope)).unwrap() else { panic!() };
        assert_eq!((e.stream.as_str(), e.event_type.as_str(), e.revision, e.schema_version), ("Interview-1", "SentenceEdited", 3, 2));
        assert_eq!(e.id, "00000000-0000-0000-0000-000000000007");
        assert_eq!(e.position, position::to_host(Position { commit: 4_096, prepare: 4_096 }).unwrap());
        assert_eq!((e.data.as_str(), e.metadata.as_bytes()), (r#"{"text":"hi"}"#, &envelope[..]));
    }

    #[test]
    fn system_binary_and_non_text_records_are_skipped_with_their_reason() {
        assert_eq!(map(&record("$metadata", true, b"{}", b"")).unwrap(), Mapped::Skipped(Skip::System));
        assert_eq!(map(&record("Photo", false, &[0xff, 0xd8], b"")).unwrap(), Mapped::Skipped(Skip::NotJson));
        assert_eq!(map(&record("Odd", true, &[0xff, 0xfe], b"")).unwrap(), Mapped::Skipped(Skip::NotText));
    }

    #[test]
    fn malformed_json_is_kept_for_the_projection_to_park_and_empty_metadata_is_an_empty_envelope() {
        let Mapped::Event(e) = map(&record("SentenceEdited", true, b"{not json", b"")).unwrap() else { panic!() };
        assert_eq!((e.data.as_str(), e.metadata.as_str(), e.schema_version), ("{not json", "{}", 1));
    }

    #[test]
    fn the_schema_version_is_read_from_the_envelope_in_the_spellings_in_use() {
        for (metadata, version) in [
            (r#"{"schema_version": 3}"#, 3),
            (r#"{"schemaVersion": "2"}"#, 2),
            (r#"{"eventVersion": "v4"}"#, 4),
            (r#"{"event_version": 0}"#, 1),
            (r#"{"actor": "ana"}"#, 1),
            ("[1]", 1),
            ("not json", 1),
        ] {
            assert_eq!(schema_version(metadata), version, "{metadata}");
        }
    }

    #[test]
    fn an_event_the_host_cannot_number_is_an_error_that_names_it() {
        let mut r = record("SentenceEdited", true, b"{}", b"");
        r.position = Position { commit: 1 << 50, prepare: 1 << 50 };
        let err = map(&r).unwrap_err();
        assert!(err.contains("stream Interview-1, revision 3") && err.contains("4 TiB"), "{err}");
    }
}
