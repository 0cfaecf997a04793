//! What becomes of each event in a lane, as data: apply its mutations, retry
//! it, park it, or skip it because it was applied before.

use crate::plugins::{bounds, WriteScope};
use crate::{ErrorKind, HandlerError, Mutation};

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Apply these mutations.
    Apply(Vec<Mutation>),
    /// It failed in a way that may pass: try again after a backoff.
    Retry(String),
    /// It can never succeed: set it aside with this reason.
    Park(String),
    /// Its guard shows it was applied before (a re-delivery): do nothing.
    Skip,
}

impl Outcome {
    /// Classifies a handler's answer for one event, enforcing the output
    /// bounds and the write scope.
    pub fn from_handler(result: Result<Vec<Mutation>, HandlerError>, scope: &WriteScope) -> Self {
        match result {
            Ok(mutations) => match bounds::check(&mutations).and_then(|()| scope.check(&mutations)) {
                Ok(()) => Outcome::Apply(mutations),
                Err(why) => Outcome::Park(why),
            },
            Err(HandlerError { kind: ErrorKind::Transient, message }) => Outcome::Retry(message),
            Err(HandlerError { kind: ErrorKind::Permanent, message }) => Outcome::Park(message),
        }
    }
}
