//! Finding the plugins in a directory, loading each, and refusing the whole set
//! if any one is bad: the host never starts half-configured.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sha2::Digest;
use wasmtime::component::Component;

use super::{check_sharing, ProjectionPlugin, UpcasterPlugin};
use crate::runtime::engine::load_component;
use crate::runtime::sandbox::linker;

const HANDLER_EXPORT: &str = "projector:plugin/handler@0.1.0";
const UPCASTING_EXPORT: &str = "projector:plugin/upcasting@0.1.0";

/// Every plugin the host runs.
pub struct Plugins {
    pub projections: Vec<Arc<ProjectionPlugin>>,
    pub upcasters: Vec<Arc<UpcasterPlugin>>,
}

/// One line of `projector plugins list`.
#[derive(Serialize)]
pub struct PluginSummary {
    pub name: String,
    pub version: String,
    pub world: &'static str,
    pub file: String,
    pub subscribes: Vec<String>,
}

/// The `*.wasm` files in the plugins directory `dir`, sorted by name.
pub fn component_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the plugins directory {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .collect();
    files.sort();
    Ok(files)
}

/// The plugins directory's policy on symbolic links: a plugin file may be a
/// link only to a file inside the same directory (as a deployment that swaps
/// a link to a new build makes); a link that leads out of it is refused, so
/// that the directory names everything the host runs.
fn within_its_directory(file: &Path) -> Result<()> {
    let is_link = std::fs::symlink_metadata(file).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link {
        return Ok(());
    }
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let target = std::fs::canonicalize(file).with_context(|| format!("plugin {} is a symbolic link that leads nowhere", file.display()))?;
    let dir = std::fs::canonicalize(dir).with_context(|| format!("cannot resolve the plugins directory {}", dir.display()))?;
    if target.parent() != Some(dir.as_path()) {
        bail!(
            "plugin {} is a symbolic link to {}, outside the plugins directory {}: Projector loads only files in that directory (copy the build in, or link to a file beside it)",
            file.display(),
            target.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Refuses a plugins directory anyone may write: what is in it runs in the
/// host (sandboxed, but with the read models' labels and the host's time).
fn open_to_others(dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(dir) else { return Ok(()) };
    if meta.is_dir() && meta.mode() & 0o002 != 0 {
        bail!("the plugins directory {} may be written by anyone (mode {:o}): `chmod o-w {}`", dir.display(), meta.mode() & 0o777, dir.display());
    }
    Ok(())
}

/// A plugin file's bytes; only a regular file is read (a FIFO or a device
/// would hold up loading for ever).
fn read_plugin(file: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(file).with_context(|| format!("cannot read plugin {}", file.display()))?;
    if !meta.is_file() {
        bail!("plugin {} is not a regular file: a plugin is a component file", file.display());
    }
    std::fs::read(file).with_context(|| format!("cannot read plugin {}", file.display()))
}

impl Plugins {
    /// Loads every `*.wasm` file in `dir` (sorted by name), compiling through `cache_dir`.
    pub fn load_dir(dir: &Path, cache_dir: &Path) -> Result<Self> {
        open_to_others(dir)?;
        let files = component_files(dir).map_err(|e| {
            e.context("build the plugins with `just plugins`, or set `plugins` in projector.toml")
        })?;
        if files.is_empty() {
            bail!("no plugins (*.wasm) in {}: build them with `just plugins`", dir.display());
        }
        Self::load_files(&files, cache_dir)
    }

    /// Loads the given component files.
    pub fn load_files(files: &[PathBuf], cache_dir: &Path) -> Result<Self> {
        let linker = linker()?;
        let mut plugins = Plugins { projections: Vec::new(), upcasters: Vec::new() };
        for file in files {
            within_its_directory(file)?;
            // Read once: the bytes hashed are the bytes compiled.
            let bytes = read_plugin(file)?;
            let digest: [u8; 32] = sha2::Sha256::digest(&bytes).into();
            let component = load_component(file, &bytes, &digest, cache_dir)?;
            let pre = linker.instantiate_pre(&component).map_err(|e| {
                anyhow::anyhow!("plugin {} needs imports this host does not give ({e:#}); a plugin may import only `projector:plugin/log` and WASI 0.2 interfaces (given an empty context)", file.display())
            })?;
            if component.get_export_index(None, HANDLER_EXPORT).is_some() {
                plugins.projections.push(Arc::new(ProjectionPlugin::new(file, pre, digest.to_vec())?));
            } else if component.get_export_index(None, UPCASTING_EXPORT).is_some() {
                plugins.upcasters.push(Arc::new(UpcasterPlugin::new(file, pre, digest.to_vec())?));
            } else {
                bail!(
                    "plugin {} is neither a projection nor an upcaster: it exports [{}], but a plugin must export `{HANDLER_EXPORT}` (world `projection`) or `{UPCASTING_EXPORT}` (world `upcaster`)",
                    file.display(),
                    export_names(&component).join(", ")
                );
            }
        }
        plugins.check_unique_names()?;
        check_sharing(plugins.projections.iter().map(|p| &p.manifest)).map_err(anyhow::Error::msg)?;
        Ok(plugins)
    }

    fn check_unique_names(&self) -> Result<()> {
        let mut seen = std::collections::HashMap::new();
        let names = self.projections.iter().map(|p| (&p.manifest.name, &p.file));
        let names = names.chain(self.upcasters.iter().map(|u| (&u.manifest.name, &u.file)));
        for (name, file) in names {
            if let Some(other) = seen.insert(name.clone(), file.clone()) {
                bail!("two plugins are named `{name}`: {} and {}; names must be unique", other.display(), file.display());
            }
        }
        Ok(())
    }

    pub fn summaries(&self) -> Vec<PluginSummary> {
        let projections = self.projections.iter().map(|p| {
            let m = &p.manifest;
            let mut subscribes = m.event_types.clone();
            subscribes.extend(m.stream_prefixes.iter().map(|s| format!("{s}*")));
            PluginSummary { name: m.name.clone(), version: m.version.clone(), world: "projection", file: p.file.display().to_string(), subscribes }
        });
        let upcasters = self.upcasters.iter().map(|u| {
            let m = &u.manifest;
            let subscribes = m.upgrades.iter().map(|s| format!("{} v{}", s.event_type, s.from_version)).collect();
            PluginSummary { name: m.name.clone(), version: m.version.clone(), world: "upcaster", file: u.file.display().to_string(), subscribes }
        });
        projections.chain(upcasters).collect()
    }
}

fn export_names(component: &Component) -> Vec<String> {
    let ty = component.component_type();
    ty.exports(crate::runtime::engine::engine()).map(|(name, _)| format!("`{name}`")).collect()
}
