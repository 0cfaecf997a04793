//! The one wasmtime engine, its epoch clock, and loading components through the compiled-plugin cache.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::Result;
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

use super::cache::Cache;
use crate::telemetry::printable;

/// What follows `\0asm` in a WebAssembly file: a core module (version 1) or a
/// component (version 0x0d, layer 1).
const WASM_LAYERS: [[u8; 4]; 2] = [[1, 0, 0, 0], [0x0d, 0, 1, 0]];
use super::limits::{EPOCH_TICK, MAX_WASM_STACK_BYTES};

/// The process's engine: component model on, epoch interruption on, and a
/// background thread that advances the epoch every [`EPOCH_TICK`].
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(MAX_WASM_STACK_BYTES);
        let engine = Engine::new(&config).expect("the engine's fixed configuration is valid");
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .expect("spawn the epoch thread");
        engine
    })
}

/// Compiles a component, or loads its compiled form from `cache_dir` when this
/// exact file was compiled before by a compatible engine (and the artifact
/// passes its check, [`super::cache`]). Python and JS components take seconds
/// to compile, so the cache is what makes reloads fast.
/// `bytes` are the file's, read once by the caller (so that what runs is what
/// it hashed); `digest` is their sha256.
pub fn load_component(file: &Path, bytes: &[u8], digest: &[u8; 32], cache_dir: &Path) -> Result<Component> {
    // Checked here, so that no error quotes the bytes of a file that is not WebAssembly.
    if !bytes.starts_with(b"\0asm") || !WASM_LAYERS.iter().any(|layer| bytes.get(4..8) == Some(layer)) {
        anyhow::bail!("{} is not a valid WebAssembly component: it does not begin with the WebAssembly header (`\\0asm`)", file.display());
    }
    let engine = engine();
    let cache = Cache::open(cache_dir, engine.precompile_compatibility_hash())?;
    match cache.get(digest) {
        Ok(Some(artifact)) => {
            // SAFETY: the artifact is one this host's `Component::serialize`
            // made for this very component and engine: its MAC, under a key
            // only the operator can read, says so (`cache::Cache::get`).
            match unsafe { Component::deserialize(engine, &artifact) } {
                Ok(component) => return Ok(component),
                Err(e) => tracing::warn!(plugin = %file.display(), error = %format!("{e:#}"), "the cached compiled plugin does not load; compiling it again"),
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(plugin = %file.display(), error = %format!("{e:#}"), "the cached compiled plugin failed its check; compiling it again"),
    }
    // The parser's message may quote names the file chose.
    let component = Component::new(engine, bytes).map_err(|e| {
        anyhow::anyhow!("{} is not a valid WebAssembly component: {}", file.display(), printable(&format!("{e:#}")))
    })?;
    if let Err(e) = component.serialize().map_err(anyhow::Error::from).and_then(|artifact| cache.put(digest, &artifact)) {
        tracing::warn!(plugin = %file.display(), error = %format!("{e:#}"), "could not cache the compiled plugin");
    }
    Ok(component)
}
