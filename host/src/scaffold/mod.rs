//! `projector new`: a working plugin to start from, in Rust, Python or
//! JavaScript — a manifest and a handler (one event type in, one node out), a
//! build script, and a test: a sample event with the mutations it must give,
//! checked by `test.sh` through the real host (and in Rust a native unit test). It
//! builds and loads as generated; the plugin is made inside a Projector
//! checkout, whose `wit/`, SDK and build scripts it uses.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The languages a plugin can be scaffolded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

/// What every language gets: the golden test of the handler.
const COMMON: [(&str, &str); 3] = [
    ("sample-event.json", include_str!("templates/sample-event.json")),
    ("expected.json", include_str!("templates/expected.json")),
    ("test.sh", include_str!("templates/test.sh")),
];

fn files(lang: Lang) -> Vec<(&'static str, &'static str)> {
    match lang {
        Lang::Rust => vec![
            ("Cargo.toml", include_str!("templates/rust/Cargo.toml")),
            ("src/lib.rs", include_str!("templates/rust/lib.rs")),
            ("build.sh", include_str!("templates/rust/build.sh")),
        ],
        Lang::Python => {
            vec![("app.py", include_str!("templates/python/app.py")), ("build.sh", include_str!("templates/python/build.sh"))]
        }
        Lang::Js => {
            vec![("projection.js", include_str!("templates/js/projection.js")), ("build.sh", include_str!("templates/js/build.sh"))]
        }
    }
}

/// The Projector checkout that holds `dir`: the nearest ancestor with `wit/` and the SDK.
fn checkout(dir: &Path) -> Result<PathBuf> {
    let dir = dir.canonicalize().with_context(|| format!("cannot find {}", dir.display()))?;
    dir.ancestors()
        .find(|d| d.join("wit/world.wit").is_file() && d.join("plugins/sdk/Cargo.toml").is_file())
        .map(Path::to_owned)
        .with_context(|| {
            format!("{} is not inside a Projector checkout (a directory with wit/ and plugins/sdk): make the plugin there", dir.display())
        })
}

/// Writes a new plugin `name` in `parent/name` and returns its directory.
pub fn scaffold(name: &str, lang: Lang, parent: &Path) -> Result<PathBuf> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("plugin name `{name}` must be non-empty and use only letters, digits, `-` and `_`");
    }
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let dir = parent.join(name);
    if dir.exists() {
        bail!("{} exists already: pick another name or remove it", dir.display());
    }
    let repo = checkout(parent)?;
    let depth = dir.canonicalize().unwrap_or_else(|_| parent.canonicalize().unwrap_or_default().join(name));
    let below = depth.strip_prefix(&repo).map(|p| p.components().filter(|c| matches!(c, Component::Normal(_))).count()).unwrap_or(0);
    let up = vec![".."; below].join("/");
    for (file, template) in files(lang).into_iter().chain(COMMON) {
        let text = template.replace("{{name}}", name).replace("{{repo}}", &up).replace("{{sdk}}", &format!("{up}/plugins/sdk"));
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("a file in the plugin's directory"))?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    #[cfg(unix)]
    for script in ["build.sh", "test.sh"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join(script), std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(dir)
}
