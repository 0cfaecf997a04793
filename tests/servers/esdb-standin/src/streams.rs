//! Streams: reads of `$all` and of a stream, subscriptions to `$all`, and appends.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::log::{Appended, Expected, Log, Proposed, Record};
use crate::proto::streams::read_req::options::{self as read, all_options::AllOption, stream_options::RevisionOption, CountOption, FilterOption, StreamOption};
use crate::proto::streams::read_resp::{self, read_event, Content};
use crate::proto::streams::{append_req, append_resp, streams_server, AppendReq, AppendResp, BatchAppendReq, BatchAppendResp, ReadReq, ReadResp};
use crate::proto::{Empty, StreamIdentifier};
use crate::Version;

/// Records a filtered subscription considers between two checkpoints, for a
/// checkpoint interval multiplier of 1 (the server's read batch).
pub const CHECKPOINT_EVERY: u64 = 32;

pub struct Streams {
    log: Arc<Log>,
    version: Version,
}

impl Streams {
    pub fn new(log: Arc<Log>, version: Version) -> Self {
        Self { log, version }
    }
}

/// A stream of replies, as the generated service takes it.
pub(crate) type Replies<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl streams_server::Streams for Streams {
    async fn read(&self, request: Request<ReadReq>) -> Result<Response<Replies<ReadResp>>, Status> {
        let options = request.into_inner().options.ok_or_else(|| Status::invalid_argument("no options"))?;
        let backwards = options.read_direction == read::ReadDirection::Backwards as i32;
        let filter = Filter::from(options.filter_option.as_ref());
        let (tx, rx) = mpsc::channel(64);
        match (options.stream_option, options.count_option) {
            (Some(StreamOption::All(all)), Some(CountOption::Count(count))) => {
                let records = read_all(&self.log, all.all_option, backwards);
                let records: Vec<Arc<Record>> = records.into_iter().filter(|r| filter.takes(r)).take(count as usize).collect();
                tokio::spawn(send_all(tx, records.into_iter().map(event).collect()));
            }
            (Some(StreamOption::Stream(stream)), Some(CountOption::Count(count))) => {
                let name = stream.stream_identifier.map(|s| String::from_utf8_lossy(&s.stream_name).into_owned()).unwrap_or_default();
                let mut records: Vec<Arc<Record>> = self.log.records().into_iter().filter(|r| r.stream == name).collect();
                if records.is_empty() {
                    let missing = Content::StreamNotFound(read_resp::StreamNotFound { stream_identifier: Some(identifier(&name)) });
                    tokio::spawn(send_all(tx, vec![missing]));
                } else {
                    records = match (stream.revision_option, backwards) {
                        (Some(RevisionOption::Revision(r)), false) => records.into_iter().filter(|x| x.revision >= r).collect(),
                        (Some(RevisionOption::Revision(r)), true) => records.into_iter().rev().filter(|x| x.revision <= r).collect(),
                        (Some(RevisionOption::End(_)), false) | (Some(RevisionOption::Start(_)), true) => vec![],
                        (_, false) => records,
                        (_, true) => records.into_iter().rev().collect(),
                    };
                    tokio::spawn(send_all(tx, records.into_iter().take(count as usize).map(event).collect()));
                }
            }
            (Some(StreamOption::All(all)), Some(CountOption::Subscription(_))) => {
                let start = start_index(&self.log, all.all_option, self.version);
                let every = options.filter_option.as_ref().and_then(checkpoint_interval);
                tokio::spawn(subscribe(self.log.clone(), self.version, start, filter, every, tx));
            }
            _ => return Err(Status::unimplemented("the stand-in reads $all and streams, and subscribes to $all only")),
        }
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn append(&self, request: Request<Streaming<AppendReq>>) -> Result<Response<AppendResp>, Status> {
        let mut messages = request.into_inner();
        let Some(Ok(AppendReq { content: Some(append_req::Content::Options(options)) })) = messages.next().await else {
            return Err(Status::invalid_argument("an append begins with its options"));
        };
        let stream = options.stream_identifier.map(|s| String::from_utf8_lossy(&s.stream_name).into_owned()).unwrap_or_default();
        use append_req::options::ExpectedStreamRevision as E;
        let expected = match options.expected_stream_revision {
            Some(E::Revision(r)) => Expected::Revision(r),
            Some(E::NoStream(_)) => Expected::NoStream,
            Some(E::StreamExists(_)) => Expected::StreamExists,
            Some(E::Any(_)) | None => Expected::Any,
        };
        let mut events = Vec::new();
        while let Some(message) = messages.next().await {
            let Some(append_req::Content::ProposedMessage(m)) = message?.content else { continue };
            events.push(Proposed {
                id: m.id.and_then(from_proto).unwrap_or_else(uuid::Uuid::new_v4),
                event_type: m.metadata.get("type").cloned().unwrap_or_default(),
                is_json: m.metadata.get("content-type").is_some_and(|c| c == "application/json"),
                data: m.data,
                custom_metadata: m.custom_metadata,
            });
        }
        Ok(Response::new(answer(self.log.append(&stream, expected, events), self.version)))
    }

    /// Appends on one long-lived stream, each request one whole append
    /// (`is_final`), each answered in turn.
    async fn batch_append(&self, request: Request<Streaming<BatchAppendReq>>) -> Result<Response<Replies<BatchAppendResp>>, Status> {
        use crate::proto::streams::batch_append_req::options::ExpectedStreamPosition as E;
        let mut requests = request.into_inner();
        let (log, version) = (self.log.clone(), self.version);
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            while let Some(Ok(req)) = requests.next().await {
                let options = req.options.unwrap_or_default();
                let stream = options.stream_identifier.map(|s| String::from_utf8_lossy(&s.stream_name).into_owned()).unwrap_or_default();
                let expected = match options.expected_stream_position {
                    Some(E::StreamPosition(r)) => Expected::Revision(r),
                    Some(E::NoStream(())) => Expected::NoStream,
                    Some(E::StreamExists(())) => Expected::StreamExists,
                    Some(E::Any(())) | None => Expected::Any,
                };
                let events = req
                    .proposed_messages
                    .into_iter()
                    .map(|m| Proposed {
                        id: m.id.and_then(from_proto).unwrap_or_else(uuid::Uuid::new_v4),
                        event_type: m.metadata.get("type").cloned().unwrap_or_default(),
                        is_json: m.metadata.get("content-type").is_some_and(|c| c == "application/json"),
                        data: m.data,
                        custom_metadata: m.custom_metadata,
                    })
                    .collect();
                let reply = batch_answer(log.append(&stream, expected, events), version, req.correlation_id, &stream);
                if tx.send(Ok(reply)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// What the server answers one append of a batch-append stream.
fn batch_answer(appended: Appended, version: Version, correlation_id: Option<crate::proto::Uuid>, stream: &str) -> BatchAppendResp {
    use crate::proto::streams::batch_append_resp::{self as b, success};
    let result = match appended {
        Appended::Written { revision, position } => {
            let at = |p: u64| success::PositionOption::Position(crate::proto::AllStreamPosition { commit_position: p, prepare_position: p });
            let position = match position {
                Some(p) => at(p),
                None if version.skips_first_at_start() => at(0),
                None => success::PositionOption::NoPosition(()),
            };
            b::Result::Success(b::Success { current_revision_option: Some(success::CurrentRevisionOption::CurrentRevision(revision)), position_option: Some(position) })
        }
        Appended::WrongExpectedVersion { current, expected } => b::Result::Error(crate::proto::google::rpc::Status {
            code: tonic::Code::FailedPrecondition as i32,
            message: format!("WrongExpectedVersion: stream {stream} is at {current:?}, expected {expected:?}"),
            details: None,
        }),
    };
    BatchAppendResp { correlation_id, stream_identifier: Some(identifier(stream)), result: Some(result), expected_stream_position: None }
}

/// What the server answers an append.
fn answer(appended: Appended, version: Version) -> AppendResp {
    use append_resp::success::{CurrentRevisionOption, PositionOption};
    use append_resp::wrong_expected_version as wrong;
    let result = match appended {
        Appended::Written { revision, position } => {
            let position = match position {
                Some(p) => PositionOption::Position(append_resp::Position { commit_position: p, prepare_position: p }),
                // The events were there already: servers before 24.2 answer (0, 0).
                None if version.skips_first_at_start() => PositionOption::Position(append_resp::Position { commit_position: 0, prepare_position: 0 }),
                None => PositionOption::NoPosition(Empty {}),
            };
            append_resp::Result::Success(append_resp::Success {
                current_revision_option: Some(CurrentRevisionOption::CurrentRevision(revision)),
                position_option: Some(position),
            })
        }
        Appended::WrongExpectedVersion { current, expected } => append_resp::Result::WrongExpectedVersion(append_resp::WrongExpectedVersion {
            current_revision_option: Some(match current {
                Some(r) => wrong::CurrentRevisionOption::CurrentRevision(r),
                None => wrong::CurrentRevisionOption::CurrentNoStream(Empty {}),
            }),
            expected_revision_option: Some(match expected {
                Expected::Revision(r) => wrong::ExpectedRevisionOption::ExpectedRevision(r),
                Expected::Any => wrong::ExpectedRevisionOption::ExpectedAny(Empty {}),
                Expected::StreamExists => wrong::ExpectedRevisionOption::ExpectedStreamExists(Empty {}),
                Expected::NoStream => wrong::ExpectedRevisionOption::ExpectedNoStream(Empty {}),
            }),
            ..Default::default()
        }),
    };
    AppendResp { result: Some(result) }
}

/// The records a read of `$all` gives, in its direction: forwards from a
/// position, the records at or after it; backwards, those before it.
fn read_all(log: &Log, from: Option<AllOption>, backwards: bool) -> Vec<Arc<Record>> {
    let records = log.records();
    match (from, backwards) {
        (Some(AllOption::Position(p)), false) => records.into_iter().filter(|r| (r.position, r.position) >= (p.commit_position, p.prepare_position)).collect(),
        (Some(AllOption::Position(p)), true) => records.into_iter().rev().filter(|r| (r.position, r.position) < (p.commit_position, p.prepare_position)).collect(),
        (Some(AllOption::End(_)), false) | (Some(AllOption::Start(_)), true) => vec![],
        (_, false) => records,
        (_, true) => records.into_iter().rev().collect(),
    }
}

/// The index of the first record a subscription from `from` delivers.
fn start_index(log: &Log, from: Option<AllOption>, version: Version) -> usize {
    let records = log.records();
    match from {
        Some(AllOption::Position(p)) => {
            let given = (p.commit_position, p.prepare_position);
            if version.skips_first_at_start() {
                // Up to 23.10: the first record at or after the position is read, and skipped.
                let at = records.iter().position(|r| (r.position, r.position) >= given).unwrap_or(records.len());
                (at + 1).min(records.len())
            } else {
                records.iter().position(|r| (r.position, r.position) > given).unwrap_or(records.len())
            }
        }
        Some(AllOption::End(_)) => records.len(),
        _ => 0,
    }
}

/// A subscription to `$all`: confirmed, then the records from `start` the
/// filter takes, checkpoints every `every` records considered, `CaughtUp`
/// where the version says so, then new records as they come.
async fn subscribe(log: Arc<Log>, version: Version, start: usize, filter: Filter, every: Option<u64>, tx: mpsc::Sender<Result<ReadResp, Status>>) {
    let confirmation = Content::Confirmation(read_resp::SubscriptionConfirmation { subscription_id: uuid::Uuid::new_v4().to_string() });
    if tx.send(Ok(ReadResp { content: Some(confirmation) })).await.is_err() {
        return;
    }
    let mut watch = log.watch();
    let (mut next, mut considered, mut caught_up) = (start, 0u64, false);
    loop {
        if log.ending() {
            return;
        }
        for record in log.from_index(next) {
            next += 1;
            considered += 1;
            let content = if filter.takes(&record) {
                event(record)
            } else if every.is_some_and(|n| considered % n == 0) {
                Content::Checkpoint(read_resp::Checkpoint { commit_position: record.position, prepare_position: record.position })
            } else {
                continue;
            };
            if tx.send(Ok(ReadResp { content: Some(content) })).await.is_err() {
                return;
            }
        }
        if !caught_up && version.says_caught_up() && tx.send(Ok(ReadResp { content: Some(Content::CaughtUp(read_resp::CaughtUp {})) })).await.is_err() {
            return;
        }
        caught_up = true;
        tokio::select! {
            changed = watch.changed() => if changed.is_err() { return },
            () = tx.closed() => return,
        }
    }
}

async fn send_all(tx: mpsc::Sender<Result<ReadResp, Status>>, contents: Vec<Content>) {
    for content in contents {
        if tx.send(Ok(ReadResp { content: Some(content) })).await.is_err() {
            return;
        }
    }
}

/// The system metadata of a record, as the server sends it.
pub(crate) fn metadata(record: &Record) -> HashMap<String, String> {
    HashMap::from([
        ("type".to_owned(), record.event_type.clone()),
        ("content-type".to_owned(), if record.is_json { "application/json" } else { "application/octet-stream" }.to_owned()),
        ("created".to_owned(), record.created.to_string()),
    ])
}

/// A record as the server sends it, at its own position.
fn event(record: Arc<Record>) -> Content {
    let metadata = metadata(&record);
    Content::Event(read_resp::ReadEvent {
        event: Some(read_event::RecordedEvent {
            id: Some(to_proto(record.id)),
            stream_identifier: Some(identifier(&record.stream)),
            stream_revision: record.revision,
            prepare_position: record.position,
            commit_position: record.position,
            metadata,
            custom_metadata: record.custom_metadata.clone(),
            data: record.data.clone(),
        }),
        link: None,
        position: Some(read_event::Position::CommitPosition(record.position)),
    })
}

pub(crate) fn identifier(stream: &str) -> StreamIdentifier {
    StreamIdentifier { stream_name: stream.as_bytes().to_vec() }
}

pub(crate) fn to_proto(id: uuid::Uuid) -> crate::proto::Uuid {
    let n = id.as_u128();
    crate::proto::Uuid {
        value: Some(crate::proto::uuid::Value::Structured(crate::proto::uuid::Structured {
            most_significant_bits: (n >> 64) as u64 as i64,
            least_significant_bits: n as u64 as i64,
        })),
    }
}

pub(crate) fn from_proto(id: crate::proto::Uuid) -> Option<uuid::Uuid> {
    match id.value? {
        crate::proto::uuid::Value::Structured(s) => Some(uuid::Uuid::from_u128(((s.most_significant_bits as u64 as u128) << 64) | s.least_significant_bits as u64 as u128)),
        crate::proto::uuid::Value::String(s) => s.parse().ok(),
    }
}

/// Checkpoints of a filtered subscription come every this many records considered.
fn checkpoint_interval(filter: &FilterOption) -> Option<u64> {
    let FilterOption::Filter(f) = filter else { return None };
    Some(CHECKPOINT_EVERY * u64::from(f.checkpoint_interval_multiplier.max(1)))
}

/// A server-side filter: on stream names or on event types, by prefixes or
/// by a regular expression.
pub(crate) enum Filter {
    Everything,
    Streams(Match),
    Types(Match),
}

pub(crate) enum Match {
    Prefixes(Vec<String>),
    Regex(regex::Regex),
}

impl Match {
    pub(crate) fn new(regex: &str, prefixes: &[String]) -> Self {
        if prefixes.is_empty() {
            Match::Regex(regex::Regex::new(regex).unwrap_or_else(|_| regex::Regex::new("$^").expect("a valid regex")))
        } else {
            Match::Prefixes(prefixes.to_vec())
        }
    }

    fn matches(&self, s: &str) -> bool {
        match self {
            Match::Prefixes(p) => p.iter().any(|p| s.starts_with(p.as_str())),
            Match::Regex(r) => r.is_match(s),
        }
    }
}

impl Filter {
    fn from(option: Option<&FilterOption>) -> Self {
        use read::filter_options::Filter as F;
        match option {
            Some(FilterOption::Filter(f)) => match &f.filter {
                Some(F::StreamIdentifier(e)) => Filter::Streams(Match::new(&e.regex, &e.prefix)),
                Some(F::EventType(e)) => Filter::Types(Match::new(&e.regex, &e.prefix)),
                None => Filter::Everything,
            },
            _ => Filter::Everything,
        }
    }

    pub(crate) fn takes(&self, r: &Record) -> bool {
        match self {
            Filter::Everything => true,
            Filter::Streams(m) => m.matches(&r.stream),
            Filter::Types(m) => m.matches(&r.event_type),
        }
    }
}
