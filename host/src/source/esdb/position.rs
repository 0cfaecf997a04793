//! Positions: EventStoreDB orders `$all` by a (commit, prepare) pair of log
//! offsets; the host wants one `u64` that increases strictly from event to
//! event. The pair is packed into one number, so the host position of an event
//! *is* its EventStoreDB position and a checkpoint needs nothing stored beside it.
//!
//! Events of one append share their commit position; their prepare positions
//! lie within the append's bytes, before the commit (servers before 20.x) or
//! after it (20.x and later). The host position is
//! `commit << OFFSET_BITS | (prepare - commit + OFFSET_BIAS)`, which orders as
//! the pair does as long as `|prepare - commit| < OFFSET_BIAS` (an append smaller
//! than [`MAX_APPEND_SPAN`]) and `commit < MAX_COMMIT` (a log smaller than 4 TiB).
//! An event outside those bounds is refused with an error naming it, never
//! given a wrong position.

use eventstore::{Position, StreamPosition};

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

/// The host position of the event at `p`.
pub fn to_host(p: Position) -> Result<u64, String> {
    if p.commit >= MAX_COMMIT {
        return Err(format!("commit position {} is beyond the {} the host can number (4 TiB into the log)", p.commit, MAX_COMMIT));
    }
    let offset = p.prepare as i128 - p.commit as i128;
    if offset.unsigned_abs() > MAX_APPEND_SPAN as u128 {
        return Err(format!(
            "prepare position {} lies {} bytes from its commit position {}: the events of one append must lie within {MAX_APPEND_SPAN} bytes",
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

/// Where a subscription must start so that its first events are those at host
/// positions `>= from` (and perhaps a few before, which the reader drops).
///
/// `from` is a checkpoint: either an event's host position or one more than
/// that. Both lie in the append of the event at `from - 1`, whose commit is a
/// real log position; every event of that append lies after `(commit, 0)` in
/// `$all` order, so subscribing after it loses none.
pub fn start_for(from: u64) -> StreamPosition<Position> {
    let commit = from.saturating_sub(1) >> OFFSET_BITS;
    if from == 0 || commit == 0 {
        StreamPosition::Start
    } else {
        StreamPosition::Position(Position { commit, prepare: 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(commit: u64, prepare: u64) -> Position {
        Position { commit, prepare }
    }

    #[test]
    fn host_positions_order_as_esdb_positions_do_and_round_trip() {
        // One append before 20.x (prepares before the commit), single events,
        // and one append of 20.x (prepares from the commit on).
        let log = [at(1_000, 400), at(1_000, 700), at(1_200, 1_200), at(1_500, 1_500), at(1_500, 1_620), at(1_500, 1_900)];
        let host: Vec<u64> = log.iter().map(|p| to_host(*p).unwrap()).collect();
        assert!(host.windows(2).all(|w| w[0] < w[1]), "{host:?}");
        for (p, h) in log.iter().zip(&host) {
            assert_eq!(to_esdb(*h), *p);
        }
    }

    #[test]
    fn positions_the_host_cannot_number_are_refused_by_name() {
        let wide = to_host(at(10 << 20, (10 << 20) + MAX_APPEND_SPAN + 1)).unwrap_err();
        assert!(wide.contains("within 1048575 bytes"), "{wide}");
        assert!(to_host(at(10 << 20, (10 << 20) - MAX_APPEND_SPAN)).is_ok());
        assert!(to_host(at(MAX_COMMIT, MAX_COMMIT)).unwrap_err().contains("4 TiB"));
        assert!(to_host(at(MAX_COMMIT - 1, MAX_COMMIT - 1)).unwrap() < 1 << 63);
    }

    #[test]
    fn a_start_for_a_checkpoint_loses_no_event_of_its_append() {
        let events = [at(1_000, 400), at(1_000, 700), at(1_500, 1_500), at(1_500, 1_620)];
        for (i, e) in events.iter().enumerate() {
            let host = to_host(*e).unwrap();
            // The checkpoint is the event itself (not handled yet) or one past the one before.
            let checkpoints = [Some(host), i.checked_sub(1).map(|j| to_host(events[j]).unwrap() + 1)];
            for from in checkpoints.into_iter().flatten() {
                let StreamPosition::Position(start) = start_for(from) else { panic!("start of the log for {from}") };
                assert!((start.commit, start.prepare) < (e.commit, e.prepare), "{start:?} is not before {e:?}");
                assert!(start.commit <= e.commit && events.iter().any(|x| x.commit == start.commit), "{start:?}");
            }
        }
        assert!(matches!(start_for(0), StreamPosition::Start));
        assert!(matches!(start_for(1), StreamPosition::Start));
    }
}
