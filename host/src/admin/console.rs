//! The web console: one page, its script and its style, built into the
//! binary. The page reads the same requests as the CLI (`/status`, `/parked`,
//! `/graph/...`) and draws what the host draws as SVG; its changes (reload,
//! rollback, replay, discard) carry the admin token the user gives it, kept
//! for the browser tab only.

pub const PAGE: &str = include_str!("console/index.html");
pub const SCRIPT: &str = include_str!("console/console.js");
pub const STYLE: &str = include_str!("console/console.css");
