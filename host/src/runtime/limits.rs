//! Every limit a plugin runs under, in one place. Each is a default that a
//! projection's config may change where noted.

use std::time::Duration;

/// How often the engine's epoch advances; the unit of a call's deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How long one call into a plugin may run before it is interrupted
/// (config: `call_deadline_ms`). A batch of events is one call.
pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(5);

/// The most linear memory one plugin instance may grow to.
pub const MAX_MEMORY_BYTES: usize = 256 << 20;

/// The most table elements one plugin instance may have.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;

/// The deepest native stack a plugin's Wasm may use; deeper recursion traps.
pub const MAX_WASM_STACK_BYTES: usize = 1 << 20;

/// The most events an upcaster chain may rewrite one event through, so that a
/// pair of upcasters that undo each other cannot loop forever.
pub const MAX_UPCAST_STEPS: usize = 32;

/// A deadline in epoch ticks (at least one).
pub fn deadline_ticks(deadline: Duration) -> u64 {
    (deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

/// How many events in a row a projection's plugin may fail (trap, error,
/// output bound, write scope) before the projection is quarantined: paused,
/// with its checkpoint held at the first event it did not handle, until a new
/// build is swapped in or the host restarts (config: `quarantine_after`; 0: never).
pub const DEFAULT_QUARANTINE_AFTER: u32 = 100;

/// How long a projection's plugin may go on failing, every event it finishes
/// with a failure, before the projection is quarantined, however few events that
/// is: a plugin whose every call runs to its deadline fails slowly (config:
/// `quarantine_after_failing_ms`; 0: never).
pub const DEFAULT_QUARANTINE_AFTER_FAILING: Duration = Duration::from_secs(60);

/// The longest log line a plugin may write; the rest of a longer line is cut,
/// and the line says how much.
pub const MAX_LOG_LINE_BYTES: usize = 4 << 10;

/// The most log lines one call into a plugin may write (a batch is one call);
/// the excess is dropped, and one line after the call says how much.
pub const MAX_LOG_LINES_PER_CALL: u32 = 64;

/// The most mutations one event may cause; more fails the event, permanently.
pub const MAX_MUTATIONS_PER_EVENT: usize = 10_000;

/// The largest property value (text, or a list's total text) a mutation may carry.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// The most output one event may cause, counting every label, key, name and
/// value of its mutations; more fails the event, permanently. A batch's output
/// is bounded too: it is built in the plugin's memory, so by `MAX_MEMORY_BYTES`.
pub const MAX_OUTPUT_BYTES_PER_EVENT: usize = 8 << 20;

/// The largest event Projector takes: its data and metadata, in bytes. `import`
/// refuses a longer line (naming it); an event read from a source that is
/// larger is parked with the reason, never handed to a plugin. Memory is
/// bounded in multiples of it (`lanes::PROJECTION_BUFFER_BYTES`, `READ_BYTES`).
pub const MAX_EVENT_BYTES: usize = 8 << 20;

impl crate::Event {
    /// What the event weighs against the byte bounds: its data and metadata.
    pub fn bytes(&self) -> usize {
        self.data.len() + self.metadata.len()
    }
}

/// The most events an upcaster chain may make of one: each is told apart by
/// its index, and guards order them by position and index.
pub const MAX_SPLIT_PARTS: usize = 1 << 20;
