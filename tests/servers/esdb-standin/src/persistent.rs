//! Persistent subscriptions to `$all`: groups with a filter fixed at creation,
//! delivery ahead of acknowledgements, parking (a link to the event in the
//! group's parked stream), and the replay of parked events as those links,
//! resolved, with the positions each server version sends.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::log::{Expected, Log, Proposed, Record};
use crate::proto::persistent_subscriptions as ps;
use crate::proto::persistent_subscriptions::persistent_subscriptions_server::PersistentSubscriptions;
use crate::proto::Empty;
use crate::streams::{from_proto, identifier, to_proto, Filter, Match};
use crate::Version;

/// What the server sends for a position it does not know.
const NO_POSITION: u64 = u64::MAX;

#[derive(Clone)]
pub struct Groups {
    log: Arc<Log>,
    version: Version,
    groups: Arc<Mutex<HashMap<String, Group>>>,
}

impl Groups {
    pub fn new(log: Arc<Log>, version: Version) -> Self {
        Self { log, version, groups: Arc::default() }
    }

    /// What a restarted server does: the groups are kept, and what was in
    /// flight when it stopped is delivered again.
    pub fn restarted(&self) {
        for group in self.groups.lock().unwrap().values_mut() {
            let unanswered: Vec<Delivery> = group.in_flight.drain().map(|(_, d)| d).collect();
            group.again.extend(unanswered);
        }
    }
}

struct Group {
    filter: Arc<Filter>,
    strategy: String,
    /// The next record of `$all` the group has not delivered.
    next: usize,
    /// Delivered and not yet answered, by the delivered record's id.
    in_flight: HashMap<uuid::Uuid, Delivery>,
    /// To deliver before new records: redeliveries and replayed parked events.
    again: VecDeque<Delivery>,
    /// Links in the parked stream not yet replayed.
    parked: Vec<Delivery>,
}

/// One delivery: an event, or a link to it (a replayed parked event).
#[derive(Clone)]
struct Delivery {
    event: Arc<Record>,
    link: Option<Arc<Record>>,
}

impl Delivery {
    fn id(&self) -> uuid::Uuid {
        self.link.as_ref().unwrap_or(&self.event).id
    }
}

fn parked_stream(group: &str) -> String {
    format!("$persistentsubscription-$all::{group}-parked")
}

#[tonic::async_trait]
impl PersistentSubscriptions for Groups {
    async fn create(&self, request: Request<ps::CreateReq>) -> Result<Response<ps::CreateResp>, Status> {
        use ps::create_req::all_options::filter_options::Filter as F;
        use ps::create_req::all_options::FilterOption;
        let options = request.into_inner().options.ok_or_else(|| Status::invalid_argument("no options"))?;
        let Some(ps::create_req::options::StreamOption::All(all)) = options.stream_option else {
            return Err(Status::unimplemented("the stand-in has groups of $all only"));
        };
        let filter = match all.filter_option {
            Some(FilterOption::Filter(f)) => match f.filter {
                Some(F::StreamIdentifier(e)) => Filter::Streams(Match::new(&e.regex, &e.prefix)),
                Some(F::EventType(e)) => Filter::Types(Match::new(&e.regex, &e.prefix)),
                None => Filter::Everything,
            },
            _ => Filter::Everything,
        };
        let strategy = options.settings.map(|s| s.consumer_strategy).unwrap_or_default();
        let mut groups = self.groups.lock().unwrap();
        if groups.contains_key(&options.group_name) {
            return Err(Status::already_exists(format!("group {} exists", options.group_name)));
        }
        let group = Group { filter: Arc::new(filter), strategy, next: 0, in_flight: HashMap::new(), again: VecDeque::new(), parked: Vec::new() };
        groups.insert(options.group_name, group);
        Ok(Response::new(ps::CreateResp {}))
    }

    async fn get_info(&self, request: Request<ps::GetInfoReq>) -> Result<Response<ps::GetInfoResp>, Status> {
        let name = request.into_inner().options.map(|o| o.group_name).unwrap_or_default();
        let groups = self.groups.lock().unwrap();
        let group = groups.get(&name).ok_or_else(|| Status::not_found(format!("no group {name}")))?;
        let info = ps::SubscriptionInfo {
            event_source: "$all".into(),
            group_name: name.clone(),
            status: "Live".into(),
            start_from: "C:0/P:0".into(),
            last_checkpointed_event_position: "C:0/P:0".into(),
            last_known_event_position: "C:0/P:0".into(),
            message_timeout_milliseconds: 60_000,
            named_consumer_strategy: group.strategy.clone(),
            parked_message_count: group.parked.len() as i64,
            ..Default::default()
        };
        Ok(Response::new(ps::GetInfoResp { subscription_info: Some(info) }))
    }

    async fn replay_parked(&self, request: Request<ps::ReplayParkedReq>) -> Result<Response<ps::ReplayParkedResp>, Status> {
        let name = request.into_inner().options.map(|o| o.group_name).unwrap_or_default();
        let mut groups = self.groups.lock().unwrap();
        let group = groups.get_mut(&name).ok_or_else(|| Status::not_found(format!("no group {name}")))?;
        let parked = std::mem::take(&mut group.parked);
        group.again.extend(parked);
        Ok(Response::new(ps::ReplayParkedResp {}))
    }

    async fn read(&self, request: Request<Streaming<ps::ReadReq>>) -> Result<Response<crate::streams::Replies<ps::ReadResp>>, Status> {
        let mut requests = request.into_inner();
        let Some(Ok(ps::ReadReq { content: Some(ps::read_req::Content::Options(options)) })) = requests.next().await else {
            return Err(Status::invalid_argument("a read begins with its options"));
        };
        if !self.groups.lock().unwrap().contains_key(&options.group_name) {
            return Err(Status::not_found(format!("no group {}", options.group_name)));
        }
        let (tx, rx) = mpsc::channel(64);
        let consumer = Consumer {
            log: self.log.clone(),
            version: self.version,
            groups: self.groups.clone(),
            name: options.group_name,
            room: options.buffer_size.max(1) as usize,
        };
        tokio::spawn(consumer.serve(requests, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// One connection to a group.
struct Consumer {
    log: Arc<Log>,
    version: Version,
    groups: Arc<Mutex<HashMap<String, Group>>>,
    name: String,
    room: usize,
}

impl Consumer {
    async fn serve(self, mut requests: Streaming<ps::ReadReq>, tx: mpsc::Sender<Result<ps::ReadResp, Status>>) {
        use ps::read_resp::Content;
        let confirmed = Content::SubscriptionConfirmation(ps::read_resp::SubscriptionConfirmation { subscription_id: format!("$all::{}", self.name) });
        if tx.send(Ok(ps::ReadResp { content: Some(confirmed) })).await.is_ok() {
            let mut watch = self.log.watch();
            loop {
                for delivery in self.take() {
                    let content = Content::Event(self.read_event(&delivery));
                    if tx.send(Ok(ps::ReadResp { content: Some(content) })).await.is_err() {
                        break;
                    }
                }
                tokio::select! {
                    answer = requests.next() => match answer {
                        Some(Ok(answer)) => self.answer(answer),
                        _ => break,
                    },
                    _ = watch.changed() => {}
                    () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                }
            }
        }
        // What had no answer is delivered again, to the next connection.
        if let Some(group) = self.groups.lock().unwrap().get_mut(&self.name) {
            let unanswered: Vec<Delivery> = group.in_flight.drain().map(|(_, d)| d).collect();
            group.again.extend(unanswered);
        }
    }

    /// The deliveries there is room for now.
    fn take(&self) -> Vec<Delivery> {
        let mut groups = self.groups.lock().unwrap();
        let Some(group) = groups.get_mut(&self.name) else { return vec![] };
        let mut taken = Vec::new();
        while group.in_flight.len() < self.room {
            let next = match group.again.pop_front() {
                Some(d) => d,
                None => {
                    let Some(record) = self.log.from_index(group.next).into_iter().next() else { break };
                    group.next += 1;
                    if !group.filter.takes(&record) || record.event_type.starts_with('$') {
                        continue;
                    }
                    Delivery { event: record, link: None }
                }
            };
            group.in_flight.insert(next.id(), next.clone());
            taken.push(next);
        }
        taken
    }

    fn answer(&self, answer: ps::ReadReq) {
        let (ids, park) = match answer.content {
            Some(ps::read_req::Content::Ack(ack)) => (ack.ids, None),
            Some(ps::read_req::Content::Nack(nack)) => {
                let park = nack.action == ps::read_req::nack::Action::Park as i32 || nack.action == ps::read_req::nack::Action::Unknown as i32;
                (nack.ids, Some(park).filter(|p| *p).map(|_| nack.reason))
            }
            _ => return,
        };
        let mut groups = self.groups.lock().unwrap();
        let Some(group) = groups.get_mut(&self.name) else { return };
        for id in ids.into_iter().filter_map(from_proto) {
            let Some(delivery) = group.in_flight.remove(&id) else { continue };
            if let Some(reason) = &park {
                // Parking writes a link to the event in the group's parked stream.
                let target = format!("{}@{}", delivery.event.revision, delivery.event.stream);
                let link = Proposed { id: uuid::Uuid::new_v4(), event_type: "$>".into(), is_json: false, data: target.into_bytes(), custom_metadata: reason.clone().into_bytes() };
                let stream = parked_stream(&self.name);
                self.log.append(&stream, Expected::Any, vec![link]);
                let written = self.log.records().into_iter().rev().find(|r| r.stream == stream).expect("the link just written");
                group.parked.push(Delivery { event: delivery.event, link: Some(written) });
            }
        }
    }

    /// A delivery as this server version sends it: a plain event at its own
    /// position; a replayed parked event as its link resolved, both at the
    /// event's own positions (21.x), at none (22.x, 23.x), or at the link's (24.x).
    fn read_event(&self, delivery: &Delivery) -> ps::read_resp::ReadEvent {
        use ps::read_resp::read_event::{Count, Position};
        let (event_at, link_at, position) = match &delivery.link {
            None => (delivery.event.position, 0, Position::CommitPosition(delivery.event.position)),
            Some(link) if self.version.major < 22 => (delivery.event.position, link.position, Position::NoPosition(Empty {})),
            Some(_) if self.version.major < 24 => (NO_POSITION, NO_POSITION, Position::NoPosition(Empty {})),
            Some(link) => (link.position, link.position, Position::CommitPosition(link.position)),
        };
        ps::read_resp::ReadEvent {
            event: Some(recorded(&delivery.event, event_at)),
            link: delivery.link.as_ref().map(|l| recorded(l, link_at)),
            position: Some(position),
            count: Some(Count::RetryCount(0)),
        }
    }
}

fn recorded(record: &Record, at: u64) -> ps::read_resp::read_event::RecordedEvent {
    ps::read_resp::read_event::RecordedEvent {
        id: Some(to_proto(record.id)),
        stream_identifier: Some(identifier(&record.stream)),
        stream_revision: record.revision,
        prepare_position: at,
        commit_position: at,
        metadata: crate::streams::metadata(record),
        custom_metadata: record.custom_metadata.clone(),
        data: record.data.clone(),
    }
}
