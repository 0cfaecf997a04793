//! The WebAssembly runtime: one engine, the contract's bindings, the limits
//! every plugin runs under, and the sandbox each instance lives in.

pub mod bindings;
pub mod engine;
pub mod limits;
pub mod sandbox;
