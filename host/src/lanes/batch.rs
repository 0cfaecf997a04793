//! Taking a batch from a lane's queue: up to `size` items, waiting at most
//! `wait` for more once the first has arrived.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The next batch, or `None` when the queue is closed and empty.
pub fn next<T>(rx: &Receiver<T>, size: usize, wait: Duration) -> Option<Vec<T>> {
    let first = rx.recv().ok()?;
    let mut batch = Vec::with_capacity(size.min(256));
    batch.push(first);
    while batch.len() < size {
        match rx.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
    let deadline = Instant::now() + wait;
    while batch.len() < size {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(item) => batch.push(item),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
    }
    Some(batch)
}
