//! The null sink: accepts every commit and keeps nothing. For benchmarks (the
//! host's cost without a store's) and dry runs (does a plugin handle every
//! event?). It stores no checkpoint, so every run starts from position 0.

use anyhow::Result;

use super::{Commit, GraphStats, ProjectionState, Resolved, Sink, SinkError};
use crate::parking::ParkedRecord;
use crate::plugins::WriteScope;

pub struct NullSink;

impl Sink for NullSink {
    fn prepare(&self, _: &str, _: &WriteScope) -> Result<ProjectionState> {
        Ok(ProjectionState::default())
    }

    fn guard(&self, _: &str, _: &str) -> Result<Option<super::Identity>, SinkError> {
        Ok(None)
    }

    fn commit(&self, _: &Commit) -> Result<(), SinkError> {
        Ok(())
    }

    fn stats(&self) -> Result<GraphStats> {
        Ok(GraphStats::default())
    }

    fn export(&self, _: &mut dyn std::io::Write) -> Result<()> {
        Ok(())
    }

    fn nodes(&self, _: &str, _: usize) -> Result<Vec<serde_json::Value>> {
        Ok(Vec::new())
    }

    fn neighbours(&self, _: &str, _: &str, _: usize) -> Result<Option<super::Neighbourhood>> {
        Ok(None)
    }

    fn parked(&self, _: Option<&str>) -> Result<Vec<ParkedRecord>> {
        Ok(Vec::new())
    }

    fn resolve_parked(&self, resolved: &Resolved) -> Result<(), SinkError> {
        Err(SinkError::Rejected(anyhow::anyhow!("the null sink keeps no parked event #{}", resolved.id)))
    }

    fn checkpoint(&self, _: &str) -> Result<u64> {
        Ok(0)
    }

    fn take_lease(&self, _: &super::lease::Claim, _: bool) -> Result<super::lease::Taken, SinkError> {
        Ok(super::lease::Taken::Yes)
    }

    fn release_lease(&self, _: &str, _: &str) -> Result<(), SinkError> {
        Ok(())
    }
}

