//! The server-side filter: built from the projections' subscriptions so that
//! EventStoreDB sends only what some projection may want.
//!
//! A filter is on event types or on stream names, not both, and matches by
//! prefix; matching more than needed is harmless (the router checks each
//! projection's subscription), matching less would lose events. So:
//! - every projection names event types: filter on those types (and the types
//!   upcasters take);
//! - else every projection names stream prefixes: filter on those prefixes;
//! - else no narrowing is possible: only system events are left out.

use eventstore::SubscriptionFilter;

use crate::source::Interest;

/// The filter, as plain data (tests compare it; [`ServerFilter::build`] makes the client's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFilter {
    /// Event types starting with one of these.
    EventTypes(Vec<String>),
    /// Streams whose name starts with one of these.
    StreamPrefixes(Vec<String>),
    /// Every event but the server's own (types starting with `$`).
    NotSystem,
}

impl ServerFilter {
    pub fn for_interest(interest: &Interest) -> Self {
        let all = |f: fn(&crate::source::Wants) -> &Vec<String>| {
            !interest.projections.is_empty() && interest.projections.iter().all(|w| !f(w).is_empty())
        };
        if all(|w| &w.event_types) {
            let types = interest.projections.iter().flat_map(|w| &w.event_types);
            ServerFilter::EventTypes(fewest_prefixes(types))
        } else if all(|w| &w.stream_prefixes) {
            ServerFilter::StreamPrefixes(fewest_prefixes(interest.projections.iter().flat_map(|w| &w.stream_prefixes)))
        } else {
            ServerFilter::NotSystem
        }
    }

    /// Whether the server lets a record of `stream` and `event_type` through.
    pub fn takes(&self, stream: &str, event_type: &str) -> bool {
        match self {
            ServerFilter::EventTypes(types) => types.iter().any(|t| event_type.starts_with(t.as_str())),
            ServerFilter::StreamPrefixes(prefixes) => prefixes.iter().any(|p| stream.starts_with(p.as_str())),
            ServerFilter::NotSystem => !event_type.starts_with('$'),
        }
    }

    /// The client's filter.
    pub fn build(&self) -> SubscriptionFilter {
        match self {
            ServerFilter::EventTypes(types) => types.iter().fold(SubscriptionFilter::on_event_type(), |f, t| f.add_prefix(t)),
            ServerFilter::StreamPrefixes(prefixes) => prefixes.iter().fold(SubscriptionFilter::on_stream_name(), |f, p| f.add_prefix(p)),
            ServerFilter::NotSystem => SubscriptionFilter::on_event_type().exclude_system_events(),
        }
    }
}

impl std::fmt::Display for ServerFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerFilter::EventTypes(t) => write!(f, "event types starting with {}", t.join(", ")),
            ServerFilter::StreamPrefixes(p) => write!(f, "streams starting with {}", p.join(", ")),
            ServerFilter::NotSystem => write!(f, "all but system events"),
        }
    }
}

/// Sorted, without duplicates, and without a prefix another one already covers.
fn fewest_prefixes<'a>(all: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut sorted: Vec<&String> = all.collect();
    sorted.sort();
    sorted.dedup();
    let mut kept: Vec<String> = Vec::new();
    for p in sorted {
        // Sorted order puts a prefix right before the names it covers.
        if !kept.last().is_some_and(|k| p.starts_with(k.as_str())) {
            kept.push(p.clone());
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Wants;

    fn wants(types: &[&str], prefixes: &[&str]) -> Wants {
        Wants {
            event_types: types.iter().map(|s| s.to_string()).collect(),
            stream_prefixes: prefixes.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn interest(projections: Vec<Wants>) -> Interest {
        Interest { projections }
    }

    #[test]
    fn event_types_of_all_projections_make_one_type_filter() {
        let i = interest(vec![wants(&["SentenceEdited", "InterviewCreated"], &[]), wants(&["InterviewCreated", "Sentence"], &["Interview-"])]);
        assert_eq!(ServerFilter::for_interest(&i), ServerFilter::EventTypes(vec!["InterviewCreated".into(), "Sentence".into()]));
    }

    #[test]
    fn stream_prefixes_are_used_when_some_projection_takes_every_type() {
        let i = interest(vec![wants(&["SentenceEdited"], &["Interview-"]), wants(&[], &["User-", "Interview-"])]);
        assert_eq!(ServerFilter::for_interest(&i), ServerFilter::StreamPrefixes(vec!["Interview-".into(), "User-".into()]));
    }

    #[test]
    fn a_projection_that_wants_everything_leaves_only_system_events_out() {
        for projections in [vec![wants(&["A"], &[]), wants(&[], &[])], vec![wants(&["A"], &[]), wants(&[], &["s-"])], vec![]] {
            assert_eq!(ServerFilter::for_interest(&interest(projections)), ServerFilter::NotSystem);
        }
        assert_eq!(ServerFilter::for_interest(&Interest::everything()), ServerFilter::NotSystem);
    }

    #[test]
    fn the_filter_never_lets_less_through_than_the_projections_want() {
        let i = interest(vec![wants(&["SentenceCreated", "SentenceCreatedV2", "Tag"], &[]), wants(&["Tagged"], &[])]);
        let ServerFilter::EventTypes(prefixes) = ServerFilter::for_interest(&i) else { panic!() };
        assert_eq!(prefixes, ["SentenceCreated", "Tag"]);
        for t in ["SentenceCreated", "SentenceCreatedV2", "Tag", "Tagged"] {
            assert!(prefixes.iter().any(|p| t.starts_with(p.as_str())), "{t} filtered out");
        }
    }
}
