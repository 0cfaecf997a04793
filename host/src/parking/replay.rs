//! Replaying parked events through the current plugin version: each key's
//! parked events in position order, honouring guards. A key is released when
//! its last parked event replays; an event that fails again stays parked, and
//! so does the rest of its key.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use super::{event_from_json, ParkMode, ParkedRecord, Resolution};
use crate::outcome::Outcome;
use crate::plugins::{needed_by, KeepsFailing, Plugins, UpcasterChain};
use crate::sink::lease::Lease;
use crate::sink::{Applied, Identity, Resolved, Sink};

/// Which parked events to replay.
#[derive(Debug, Clone)]
pub enum Which {
    /// This one, then the events parked behind it.
    One(i64),
    /// Every parked event, or those of one projection.
    All { projection: Option<String> },
}

#[derive(Debug, Default)]
pub struct ReplayReport {
    pub replayed: usize,
    pub still_parked: usize,
    /// One line per key that stays parked, saying why.
    pub failures: Vec<String>,
}

/// What a replay takes from a projection's settings.
#[derive(Debug, Clone, Copy)]
pub struct Handling {
    /// Each call of its handler and upcasters runs under this.
    pub deadline: std::time::Duration,
    /// How it parks: which tells whether an event behind its key's guard was applied.
    pub park_mode: ParkMode,
}

/// Each projection's handler, and the upcasters before it, run as
/// `handling(projection)` says. `hold(projection)` takes the lease on its read
/// model, for every projection with events to replay, before any is replayed:
/// a replay is a writer like a running host, and fenced like one.
pub fn replay(
    plugins: &Plugins,
    sink: &dyn Sink,
    which: Which,
    handling: &dyn Fn(&str) -> Handling,
    hold: &dyn Fn(&str) -> Result<Arc<Lease>>,
) -> Result<ReplayReport> {
    let mut leases = BTreeMap::new();
    for (projection, _) in chosen(sink, &which)?.keys() {
        if !leases.contains_key(projection) {
            leases.insert(projection.clone(), hold(projection)?);
        }
    }
    // Read again under the leases: what another command resolved while this
    // one waited for them is not replayed.
    let mut keys = chosen(sink, &which)?;
    keys.retain(|(projection, _), _| leases.contains_key(projection));
    let mut chains = std::collections::HashMap::new();
    let mut report = ReplayReport::default();
    for ((projection, key), mut records) in keys {
        let plugin = plugins
            .projections
            .iter()
            .find(|p| p.name() == projection)
            .with_context(|| format!("no plugin for projection `{projection}`, which has parked events"))?;
        let Handling { deadline, park_mode } = handling(&projection);
        let mut instance = plugin.instantiate(deadline)?;
        if !chains.contains_key(&projection) {
            let needed = needed_by(plugin, &plugins.upcasters);
            chains.insert(projection.clone(), UpcasterChain::new(&needed, &plugins.upcasters, deadline, KeepsFailing::NEVER)?);
        }
        let upcasters = chains.get_mut(&projection).expect("made above");
        records.sort_by_key(|r| (r.position, r.part));
        let total = records.len();
        for (done, record) in records.into_iter().enumerate() {
            let event = event_from_json(&record.event)?;
            let guard = sink.guard(&projection, &key).map_err(|e| anyhow::anyhow!("{e}"))?;
            let id = Identity { position: event.position, part: record.part };
            let outcome = if guard.is_some_and(|g| applied_already(id, g, park_mode)) {
                Outcome::Skip
            } else {
                match upcasters.upcast(event) {
                    Err(why) => Outcome::Park(format!("upcast failed: {why}")),
                    // As the router does: only what the projection subscribes to reaches its handler.
                    Ok(events) => match instance.handle(&events.into_iter().filter(|e| plugin.subscribes(e)).collect::<Vec<_>>()) {
                        Err(trap) => Outcome::Park(format!("trap: {trap}")),
                        Ok(results) => {
                            let outcomes: Vec<Outcome> =
                                results.into_iter().map(|r| Outcome::from_handler(r, &plugin.scope)).collect();
                            merge(outcomes)
                        }
                    },
                }
            };
            let applied = match &outcome {
                Outcome::Apply(mutations) => Some(Applied { key: &key, position: record.position, part: record.part, mutations }),
                Outcome::Skip => None,
                Outcome::Park(why) | Outcome::Retry(why) => {
                    report.still_parked += total - done;
                    report.failures.push(format!("#{} ({projection}, key {key}) failed again: {why}", record.id));
                    break;
                }
            };
            let lease = Some(leases[&projection].token());
            let resolved = Resolved { projection: &projection, id: record.id, resolution: Resolution::Replayed, note: None, applied, lease };
            sink.resolve_parked(&resolved).map_err(|e| anyhow::anyhow!("{e}"))?;
            report.replayed += 1;
        }
    }
    Ok(report)
}

/// Whether the event `id` was applied, its key's guard standing at `guard`:
/// when the guard names it, yes. Past it, only where a parked event holds its
/// key's later events back (`KeyTail`): there nothing after it is applied
/// unless it was. Where later events go on (`Event`), they move the guard
/// past it while it waits, and it was not.
fn applied_already(id: Identity, guard: Identity, mode: ParkMode) -> bool {
    id == guard || (id < guard && mode == ParkMode::KeyTail)
}

/// The parked events `which` names, by projection and key.
fn chosen(sink: &dyn Sink, which: &Which) -> Result<BTreeMap<(String, String), Vec<ParkedRecord>>> {
    let parked: Vec<ParkedRecord> = sink.parked(None)?.into_iter().filter(|p| p.status == "parked").collect();
    let mut keys: BTreeMap<(String, String), Vec<ParkedRecord>> = BTreeMap::new();
    for p in parked {
        keys.entry((p.projection.clone(), p.key.clone())).or_default().push(p);
    }
    match which {
        Which::One(id) => {
            let Some((key, records)) = keys.iter().find(|(_, rs)| rs.iter().any(|r| r.id == *id)) else {
                bail!("no parked event #{id} (see `projector parked list`)");
            };
            let head = records.iter().min_by_key(|r| r.position).expect("a key has records");
            if head.id != *id {
                bail!("event #{id} is parked behind #{} (the first failure of key {}): replay #{} instead, which releases the key in order", head.id, key.1, head.id);
            }
            let key = key.clone();
            keys.retain(|k, _| *k == key);
        }
        Which::All { projection: Some(name) } => keys.retain(|(p, _), _| p == name),
        Which::All { projection: None } => {}
    }
    Ok(keys)
}

/// The outcome of one parked event that an upcaster may have split into several.
fn merge(outcomes: Vec<Outcome>) -> Outcome {
    let mut all = Vec::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Apply(m) => all.extend(m),
            Outcome::Skip => {}
            failed => return failed,
        }
    }
    Outcome::Apply(all)
}
