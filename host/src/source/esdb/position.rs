//! Positions: EventStoreDB orders `$all` by a (commit, prepare) pair of log
//! offsets; the host wants one `u64` that increases strictly from event to
//! event. The pair is packed into one number, so the host position of an event
//! *is* its EventStoreDB position and a checkpoint needs nothing stored beside it.
//!
//! The model, as servers write it: every event appended through gRPC (and
//! every event of the TCP API since v3, but for its explicit transactions) is
//! *self-committed*: commit == prepare == the offset of its own record, and no
//! two events share a commit. Only the explicit transactions of the legacy TCP
//! API (removed in 24.2) give events a shared commit record after their
//! prepares, at any distance (other streams' writes may lie between).
//!
//! The host position is `commit << OFFSET_BITS | (prepare - commit + OFFSET_BIAS)`:
//! a self-committed event's low bits are exactly `OFFSET_BIAS`. It orders as the
//! pair does while `|prepare - commit| < OFFSET_BIAS` and `commit < MAX_COMMIT`
//! (a log smaller than 4 TiB). So legacy transactions are read while their
//! prepares lie within [`MAX_APPEND_SPAN`] of their commit; one farther apart
//! is refused with an error naming it, never given a wrong position.
//!
//! Where a subscription starts ([`start_for`]) is always a real record, so
//! that servers of every version agree: up to 23.10 the filtered `$all`
//! subscription skips the first record at or after the position it is given,
//! whether a record lies there or not; 24.2 and later skip the records at or
//! before it. Given a record's own position, both start right after it.

use eventstore::Position;

/// Bits of the host position that hold the prepare position's offset from the commit.
pub const OFFSET_BITS: u32 = 21;
/// Added to `prepare - commit`, so that the offset is positive either way round.
const OFFSET_BIAS: u64 = 1 << (OFFSET_BITS - 1);
/// How far apart (in log bytes) the events of one append may lie: 1 MiB, the
/// server's default largest append.
pub const MAX_APPEND_SPAN: u64 = OFFSET_BIAS - 1;
/// The first commit position that does not fit: 4 TiB into the log. Host
/// positions stay below 2^63, so that stores with signed 64-bit integers keep them.
pub const MAX_COMMIT: u64 = 1 << (63 - OFFSET_BITS);

/// What the server sends for a position it does not know (-1 on the wire).
pub const NO_POSITION: u64 = u64::MAX;

/// Whether `p` is a real record's position (the server sends -1 where it has none).
pub fn is_known(p: Position) -> bool {
    p.commit != NO_POSITION && p.prepare != NO_POSITION
}

/// The host position of the event at `p`.
pub fn to_host(p: Position) -> Result<u64, String> {
    if !is_known(p) {
        return Err("the server sent no position for it".into());
    }
    if p.commit >= MAX_COMMIT {
        return Err(format!("commit position {} is beyond the {} the host can number (4 TiB into the log)", p.commit, MAX_COMMIT));
    }
    let offset = p.prepare as i128 - p.commit as i128;
    if offset.unsigned_abs() > MAX_APPEND_SPAN as u128 {
        return Err(format!(
            "it was written in an explicit transaction of the legacy TCP API, and its prepare position {} lies {} bytes from the transaction's commit position {}: \
             the host numbers such events only within {MAX_APPEND_SPAN} bytes of their commit (copy those streams into new ones, each event appended on its own, to project them)",
            p.prepare, offset, p.commit
        ));
    }
    Ok(p.commit << OFFSET_BITS | (offset + OFFSET_BIAS as i128) as u64)
}

/// The EventStoreDB position a host position stands for.
pub fn to_esdb(host: u64) -> Position {
    let commit = host >> OFFSET_BITS;
    let offset = (host & ((1 << OFFSET_BITS) - 1)) as i64 - OFFSET_BIAS as i64;
    Position { commit, prepare: (commit as i64 + offset) as u64 }
}

/// Whether `host` is the position of a self-committed event (commit == prepare).
pub fn is_self_committed(host: u64) -> bool {
    host & ((1 << OFFSET_BITS) - 1) == OFFSET_BIAS
}

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At the first record of the log.
    Beginning,
    /// Right after this record.
    After(Position),
    /// Right after the record before this one: the source reads `$all`
    /// backwards from it to find that record ([`super::feed`]).
    AfterTheRecordBefore(Position),
}

/// Where a subscription must start so that its first events are those at host
/// positions `>= from` (and perhaps a few before, which the reader drops).
///
/// `from` is a checkpoint: one past an event's host position (the events
/// before it are done) or an event's own (that event is not done yet). The
/// first is told from the second by the low bits of a self-committed event.
pub fn start_for(from: u64) -> Start {
    if from == 0 {
        Start::Beginning
    } else if is_self_committed(from - 1) {
        Start::After(to_esdb(from - 1))
    } else {
        // `from` is an event's own position, or one past a legacy
        // transaction's event: the record before the event at `from` is
        // before every event the reader wants.
        Start::AfterTheRecordBefore(to_esdb(from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(commit: u64, prepare: u64) -> Position {
        Position { commit, prepare }
    }

    /// A log as a 24.x server writes it: self-committed records (system ones
    /// among them), each at its own offset.
    const LOG: [u64; 5] = [0, 131, 402, 1_557, 1_803];

    #[test]
    fn host_positions_order_as_esdb_positions_do_and_round_trip() {
        // Self-committed events, and one legacy transaction (prepares before its commit at 9_000).
        let mut log: Vec<Position> = LOG.iter().map(|&p| at(p, p)).collect();
        log.extend([at(9_000, 8_100), at(9_000, 8_700), at(9_200, 9_200)]);
        let host: Vec<u64> = log.iter().map(|p| to_host(*p).unwrap()).collect();
        assert!(host.windows(2).all(|w| w[0] < w[1]), "{host:?}");
        for (p, h) in log.iter().zip(&host) {
            assert_eq!(to_esdb(*h), *p);
            assert_eq!(is_self_committed(*h), p.commit == p.prepare, "{p:?}");
        }
    }

    #[test]
    fn positions_the_host_cannot_number_are_refused_by_name() {
        let wide = to_host(at(10 << 20, (10 << 20) - MAX_APPEND_SPAN - 1)).unwrap_err();
        assert!(wide.contains("explicit transaction of the legacy TCP API") && wide.contains("within 1048575 bytes"), "{wide}");
        assert!(to_host(at(10 << 20, (10 << 20) - MAX_APPEND_SPAN)).is_ok());
        assert!(to_host(at(MAX_COMMIT, MAX_COMMIT)).unwrap_err().contains("4 TiB"));
        assert!(to_host(at(MAX_COMMIT - 1, MAX_COMMIT - 1)).unwrap() < 1 << 63);
        // What a parked-message replay carries on 22.x and 23.x servers: -1 for both.
        let none = to_host(at(NO_POSITION, NO_POSITION)).unwrap_err();
        assert!(none.contains("no position"), "{none}");
    }

    /// The first record a subscription from `start` delivers, on a server of
    /// either kind: up to 23.10 it skips the first record at or after the
    /// position given (whether one lies there or not), 24.2 and later the
    /// records at or before it.
    fn first_delivered(log: &[u64], start: Start, old_server: bool) -> Option<u64> {
        let pair = |p: Position| (p.commit, p.prepare);
        let given = match start {
            Start::Beginning => return log.first().copied(),
            Start::After(p) => pair(p),
            Start::AfterTheRecordBefore(p) => match log.iter().rev().find(|&&r| (r, r) < pair(p)) {
                Some(&before) => (before, before),
                None => return log.first().copied(),
            },
        };
        if old_server {
            log.iter().skip_while(|&&r| (r, r) < given).nth(1).copied()
        } else {
            log.iter().find(|&&r| (r, r) > given).copied()
        }
    }

    #[test]
    fn a_start_for_any_checkpoint_loses_no_event_on_servers_old_and_new() {
        for old_server in [true, false] {
            for (i, &record) in LOG.iter().enumerate() {
                let host = to_host(at(record, record)).unwrap();
                // The checkpoint is the event itself (not handled yet) or one past the one before.
                let checkpoints = [Some(host), i.checked_sub(1).map(|j| to_host(at(LOG[j], LOG[j])).unwrap() + 1)];
                for from in checkpoints.into_iter().flatten() {
                    let first = first_delivered(&LOG, start_for(from), old_server);
                    assert_eq!(first, Some(record), "checkpoint {from} ({}), old server: {old_server}", if from == host { "the event" } else { "past the one before" });
                }
            }
            let last = to_host(at(LOG[4], LOG[4])).unwrap();
            assert_eq!(first_delivered(&LOG, start_for(last + 1), old_server), None, "nothing after the last event");
        }
        assert_eq!(start_for(0), Start::Beginning);
    }

    #[test]
    fn the_former_start_lost_the_first_event_on_servers_up_to_23_10() {
        // What the host asked for before: (commit of the event before, 0), a position no record holds.
        let from = to_host(at(1_557, 1_557)).unwrap();
        let former = Start::After(at((from - 1) >> OFFSET_BITS, 0));
        assert_eq!(first_delivered(&LOG, former, false), Some(1_557));
        assert_eq!(first_delivered(&LOG, former, true), Some(1_803), "the old enumerator skips the record at 1557");
        assert_eq!(first_delivered(&LOG, start_for(from), true), Some(1_557));
    }
}
