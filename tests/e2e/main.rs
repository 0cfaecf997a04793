//! End-to-end tests: real plugins compiled from source, loaded by the real host,
//! over real files. Plugins are built once per test run (`support::plugin`).

mod support;

mod admin;
mod appends;
mod browser;
mod cache;
mod console;
mod esdb;
mod import;
mod interview;
mod isolation;
mod languages;
mod lifecycle;
mod logs;
mod faults;
mod groups;
mod loading;
mod memory;
mod monitor;
mod neo4j;
mod ordering;
mod parking;
mod replay;
mod restart;
mod sandbox;
mod shutdown;
mod sources;
mod swap;
mod targets;
mod upcasting;
mod writers;
