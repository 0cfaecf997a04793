//! The roster: the projections a host runs now. The supervisor adds a
//! projection when its runner starts and takes it off when the runner is
//! stopped; the swapper, the monitor and the admin endpoint read it.

use std::sync::{Arc, RwLock};

use crate::lanes::Vitals;
use crate::plugins::Slot;

/// One running projection, as the rest of the host sees it.
#[derive(Clone)]
pub struct Member {
    pub slot: Arc<Slot>,
    pub vitals: Arc<Vitals>,
    /// Whether it reads the source in its order (not through a group, whose
    /// deliveries come in any order): only then is there a lag to tell.
    pub in_order: bool,
}

impl Member {
    pub fn name(&self) -> &str {
        self.slot.name()
    }
}

/// The running projections, ordered by name.
#[derive(Default)]
pub struct Roster(RwLock<Vec<Member>>);

impl Roster {
    pub fn new(members: Vec<Member>) -> Arc<Self> {
        let roster = Arc::new(Self::default());
        for m in members {
            roster.join(m);
        }
        roster
    }

    /// The projections now.
    pub fn members(&self) -> Vec<Member> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn find(&self, name: &str) -> Option<Member> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).iter().find(|m| m.name() == name).cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).iter().map(|m| m.name().to_owned()).collect()
    }

    /// Adds `member`, in the place of one of its name.
    pub fn join(&self, member: Member) {
        let mut members = self.0.write().unwrap_or_else(|p| p.into_inner());
        members.retain(|m| m.name() != member.name());
        let at = members.partition_point(|m| m.name() < member.name());
        members.insert(at, member);
    }

    pub fn leave(&self, name: &str) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).retain(|m| m.name() != name);
    }
}
