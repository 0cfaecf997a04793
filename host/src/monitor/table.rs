//! `projector status` as a table for people.

use std::fmt::Write;

use super::status::HostStatus;

/// One row per projection, then what is wrong, in words.
pub fn render(host: &str, status: &HostStatus) -> String {
    let mut rows = vec![["PROJECTION", "BUILD", "STATE", "CHECKPOINT", "HEAD", "LAG", "LAG (S)", "EVENTS/S", "PARKED"].map(String::from).to_vec()];
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for p in &status.projections {
        rows.push(vec![
            p.name.clone(),
            p.build.clone(),
            p.state.describe(p.retrying_keys),
            or_dash(p.checkpoint.map(|c| c.to_string())),
            or_dash(p.head.map(|h| h.to_string())),
            or_dash(p.lag_events.map(|l| l.to_string())),
            or_dash(p.lag_seconds.map(|l| format!("{l:.1}"))),
            format!("{:.0}", p.events_per_second),
            or_dash(p.parked.map(|n| n.to_string())),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = format!("host {host}\n");
    for row in &rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    for p in &status.projections {
        if let Some(why) = &p.quarantined {
            let _ = writeln!(out, "{} is quarantined: {why}", p.name);
        }
    }
    if let Some(e) = &status.source_error {
        let _ = writeln!(out, "the source does not answer: {e}");
    }
    if let Some(e) = &status.sink_error {
        let _ = writeln!(out, "the sink does not answer: {e}");
    }
    if let Some(age) = status.read_seconds_ago.filter(|a| *a > 5.0) {
        let _ = writeln!(out, "read {age:.0} s ago: the source or the sink is slow to answer the host");
    }
    out
}
