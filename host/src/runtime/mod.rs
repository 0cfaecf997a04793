//! The WebAssembly runtime: one engine, the contract's bindings, the limits
//! every plugin runs under, the sandbox each instance lives in, and the cache
//! of compiled components.

pub mod bindings;
pub mod cache;
pub mod engine;
pub mod limits;
pub mod sandbox;
