//! Upcaster plugins and the chain that runs them: an event is raised one schema
//! version at a time until no upcaster claims its (type, version). A chain
//! that keeps failing says so, and its projection is quarantined by the router.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use wasmtime::component::InstancePre;

use crate::runtime::bindings::upcasting;
use crate::runtime::limits::{MAX_SPLIT_PARTS, MAX_UPCAST_STEPS};
use crate::runtime::sandbox::{PluginState, Sandbox};
use crate::{Event, UpcasterManifest};

/// A loaded, validated upcaster.
pub struct UpcasterPlugin {
    pub file: PathBuf,
    /// SHA-256 of the component file this build was loaded from.
    pub digest: Vec<u8>,
    pub manifest: UpcasterManifest,
    pre: InstancePre<PluginState>,
}

impl UpcasterPlugin {
    pub fn new(file: &Path, pre: InstancePre<PluginState>, digest: Vec<u8>) -> Result<Self> {
        let manifest = super::describe(file, &pre, "upcaster", |g: &upcasting::Guest, s| g.call_describe(s))?;
        super::manifest::check_upcaster(&manifest)
            .with_context(|| format!("upcaster plugin {} has an invalid manifest", file.display()))?;
        Ok(Self { file: file.to_owned(), digest, manifest, pre })
    }
}

/// The upcasters a running host runs now, numbered by change. A reload that
/// finds them changed puts the new set here, once it has checked it; each
/// router takes it up before its next read, so that every event is upcast
/// by one chain.
#[derive(Default)]
pub struct UpcasterSet(RwLock<(u64, Vec<Arc<UpcasterPlugin>>)>);

impl UpcasterSet {
    pub fn new(upcasters: Vec<Arc<UpcasterPlugin>>) -> Arc<Self> {
        Arc::new(Self(RwLock::new((0, upcasters))))
    }

    /// The set now, and its number.
    pub fn current(&self) -> (u64, Vec<Arc<UpcasterPlugin>>) {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace(&self, upcasters: Vec<Arc<UpcasterPlugin>>) {
        let mut set = self.0.write().unwrap_or_else(|p| p.into_inner());
        *set = (set.0 + 1, upcasters);
    }
}

/// The upcasters of `all` a projection needs: those that take a type it subscribes to.
pub fn needed_by(projection: &crate::plugins::ProjectionPlugin, all: &[Arc<UpcasterPlugin>]) -> Vec<Arc<UpcasterPlugin>> {
    all.iter().filter(|u| projection.needs(&u.manifest)).cloned().collect()
}

/// Why an upcast failed, and whether it counts towards quarantine.
struct Failed {
    why: String,
    broke: bool,
}

/// When a chain that keeps failing quarantines its projection: after this many
/// events failed in a row (0: never), or after failing for this long (zero: never).
/// The projection's own `quarantine_after` and `quarantine_after_failing_ms`.
#[derive(Debug, Clone, Copy)]
pub struct KeepsFailing {
    pub after: u32,
    pub after_failing: Duration,
}

impl KeepsFailing {
    /// For a chain run by hand (`parked replay`) or in a benchmark: nothing to quarantine.
    pub const NEVER: Self = Self { after: 0, after_failing: Duration::ZERO };
}

/// Which upcaster of `plugins` takes each (event type, version); two that
/// claim the same step are refused, whether or not one projection needs both.
pub fn claims(plugins: &[Arc<UpcasterPlugin>]) -> Result<HashMap<(String, u32), usize>> {
    let mut steps = HashMap::new();
    for (index, plugin) in plugins.iter().enumerate() {
        for step in &plugin.manifest.upgrades {
            if let Some(other) = steps.insert((step.event_type.clone(), step.from_version), index) {
                let (other, name) = (&plugins[other].manifest.name, &plugin.manifest.name);
                bail!("upcasters `{other}` and `{name}` both upgrade {} v{}", step.event_type, step.from_version);
            }
        }
    }
    Ok(steps)
}

/// The upcasters in effect, each instantiated once; owned by a projection's router.
pub struct UpcasterChain {
    steps: HashMap<(String, u32), usize>,
    instances: Vec<(String, Sandbox<upcasting::Guest>)>,
    /// Steps taken by upcasters outside the chain, by name: an upcast that
    /// ends at one of them would lose the event (the projection does not
    /// subscribe to the type in between), so it fails instead.
    outside: HashMap<(String, u32), String>,
    limit: KeepsFailing,
    /// Events whose upcast broke (a trap, a deadline, a step that breaks the
    /// contract) since the last one upcast, and the time their calls took.
    /// Refusals (the event's fault) do not count, as for handlers.
    broke_in_a_row: u32,
    broke_for: Duration,
    /// The digests of the upcasters it is made of, in order.
    made_of: Vec<Vec<u8>>,
}

impl UpcasterChain {
    /// The chain of `plugins` (those of `all` a projection needs), each call
    /// under `deadline` (the projection's `call_deadline_ms`).
    pub fn new(plugins: &[Arc<UpcasterPlugin>], all: &[Arc<UpcasterPlugin>], deadline: Duration, limit: KeepsFailing) -> Result<Self> {
        let steps = claims(plugins)?;
        let mut instances = Vec::new();
        for plugin in plugins {
            let name = plugin.manifest.name.clone();
            instances.push((name.clone(), Sandbox::new(&name, plugin.pre.clone(), deadline)?));
        }
        let outside = all
            .iter()
            .flat_map(|p| p.manifest.upgrades.iter().map(|s| ((s.event_type.clone(), s.from_version), p.manifest.name.clone())))
            .filter(|(step, _)| !steps.contains_key(step))
            .collect();
        let made_of = plugins.iter().map(|p| p.digest.clone()).collect();
        Ok(Self { steps, instances, outside, limit, broke_in_a_row: 0, broke_for: Duration::ZERO, made_of })
    }

    /// Whether some upcaster of the chain takes the event as it is.
    pub fn claims(&self, event: &Event) -> bool {
        !self.steps.is_empty() && self.steps.contains_key(&(event.event_type.clone(), event.schema_version))
    }

    /// Raises an event to the latest version any upcaster knows. Usually one
    /// event comes out; an upcaster may split one into several, or drop it.
    pub fn upcast(&mut self, event: Event) -> Result<Vec<Event>, String> {
        let started = Instant::now();
        match self.steps_of(event) {
            Ok(done) => {
                self.reset();
                Ok(done)
            }
            Err(Failed { why, broke }) => {
                if broke {
                    self.broke_in_a_row += 1;
                    self.broke_for += started.elapsed();
                }
                Err(why)
            }
        }
    }

    /// Whether both chains are made of the same upcasters: they upcast alike.
    pub fn same_as(&self, other: &UpcasterChain) -> bool {
        self.made_of == other.made_of
    }

    /// Takes over the failures `former` counted: a chain made anew of the same
    /// upcasters does not start a quarantine's count again.
    pub fn carry_failures(&mut self, former: &UpcasterChain) {
        (self.broke_in_a_row, self.broke_for) = (former.broke_in_a_row, former.broke_for);
    }

    /// Forgets the failures so far (a success, or the projection resumes).
    pub fn reset(&mut self) {
        (self.broke_in_a_row, self.broke_for) = (0, Duration::ZERO);
    }

    /// Why the chain keeps failing, once it broke on `limit.after` events in a
    /// row or for `limit.after_failing` of calls: its projection must be quarantined.
    pub fn keeps_failing(&self) -> Option<String> {
        let (in_a_row, failing) = (self.broke_in_a_row, self.broke_for);
        if in_a_row == 0 {
            None
        } else if self.limit.after > 0 && in_a_row >= self.limit.after {
            Some(format!("its upcasters failed {in_a_row} events in a row"))
        } else if !self.limit.after_failing.is_zero() && failing >= self.limit.after_failing {
            Some(format!("its upcasters failed {in_a_row} events in a row, in {:.1} s of calls", failing.as_secs_f64()))
        } else {
            None
        }
    }

    fn steps_of(&mut self, event: Event) -> Result<Vec<Event>, Failed> {
        let broke = |why: String| Failed { why, broke: true };
        let mut done = Vec::new();
        let mut todo = vec![event];
        let mut steps = 0;
        while let Some(event) = todo.pop() {
            let step = (event.event_type.clone(), event.schema_version);
            let Some(&which) = self.steps.get(&step) else {
                if let Some(other) = self.outside.get(&step) {
                    return Err(Failed {
                        why: format!(
                            "the upcast gave {} v{}, which upcaster `{other}` takes, but this projection does not subscribe to {}: add that type to its subscription",
                            step.0, step.1, step.0
                        ),
                        broke: false,
                    });
                }
                done.push(event);
                continue;
            };
            steps += 1;
            if steps > MAX_UPCAST_STEPS {
                return Err(broke(format!("more than {MAX_UPCAST_STEPS} upcast steps: do two upcasters undo each other?")));
            }
            let (name, sandbox) = &mut self.instances[which];
            let from = event.schema_version;
            let out = sandbox
                .call(|guest, store| guest.call_upcast(store, &event))
                .map_err(|trap| broke(format!("upcaster `{name}` trapped: {trap}")))?
                .map_err(|error| Failed { why: format!("upcaster `{name}` refused {} v{from}: {error}", event.event_type), broke: false })?;
            for next in out.into_iter().rev() {
                if next.schema_version != from + 1 {
                    return Err(broke(format!(
                        "upcaster `{name}` turned {} v{from} into v{}, not v{}",
                        event.event_type,
                        next.schema_version,
                        from + 1
                    )));
                }
                todo.push(Event { position: event.position, revision: event.revision, stream: event.stream.clone(), ..next });
            }
        }
        if done.len() > MAX_SPLIT_PARTS {
            return Err(broke(format!("the upcast made {} events of one, more than {MAX_SPLIT_PARTS}", done.len())));
        }
        Ok(done)
    }

    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }
}
