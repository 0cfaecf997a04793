//! The one wasmtime engine, its epoch clock, and the on-disk cache of compiled components.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

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
/// exact file was compiled before by a compatible engine. Python and JS
/// components take seconds to compile, so the cache is what makes reloads fast.
pub fn load_component(file: &Path, cache_dir: &Path) -> Result<Component> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read plugin {}", file.display()))?;
    let engine = engine();
    let cached = cache_path(cache_dir, &bytes);
    if cached.exists() {
        // SAFETY: the file was written by `Component::serialize` of this same
        // engine configuration (the name carries its compatibility hash) into a
        // cache directory that only this host writes.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &cached) } {
            return Ok(component);
        }
    }
    let component = Component::new(engine, &bytes).map_err(|e| {
        anyhow::anyhow!("{} is not a valid WebAssembly component: {e:#}", file.display())
    })?;
    if let Err(e) = store_in_cache(&component, &cached) {
        tracing::warn!(plugin = %file.display(), error = %e, "could not cache the compiled plugin");
    }
    Ok(component)
}

fn cache_path(cache_dir: &Path, bytes: &[u8]) -> PathBuf {
    let mut engine_hash = DefaultHasher::new();
    engine().precompile_compatibility_hash().hash(&mut engine_hash);
    let content = Sha256::digest(bytes);
    let hex: String = content.iter().take(16).map(|b| format!("{b:02x}")).collect();
    cache_dir.join(format!("{hex}-{:016x}.cwasm", engine_hash.finish()))
}

fn store_in_cache(component: &Component, path: &Path) -> Result<()> {
    std::fs::create_dir_all(path.parent().expect("cache files live in a directory"))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, component.serialize()?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
