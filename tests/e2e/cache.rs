//! The compiled-plugin cache vouches for what it loads: an artifact replaced by
//! another plugin's, or changed in its code, is compiled again (never loaded,
//! never a crash); a cache directory others may write is refused by name.

use std::os::unix::fs::PermissionsExt;

use crate::support::Workspace;

/// The workspace with a cache of its own, and what `plugins list --json` says:
/// file name -> plugin name.
fn listed(ws: &Workspace) -> (Vec<(String, String)>, String) {
    let out = ws.command(&["plugins", "list", "--json"]).env("PROJECTOR_LOG", "warn").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let file = std::path::Path::new(p["file"].as_str().unwrap()).file_name().unwrap().to_string_lossy().into_owned();
            (file, p["name"].as_str().unwrap().to_owned())
        })
        .collect();
    (names, stderr)
}

fn artifacts(ws: &Workspace) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(&ws.config.cache).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "cwasm"));
    files.sort();
    files
}

fn private_workspace() -> Workspace {
    let mut ws = Workspace::new(&["recorder"]);
    ws.config.cache = ws.path("cache");
    ws
}

#[test]
fn an_artifact_replaced_by_another_plugins_or_changed_is_compiled_again_and_never_loaded() {
    let ws = private_workspace();
    let right = vec![("noop.wasm".to_owned(), "noop".to_owned()), ("recorder.wasm".to_owned(), "recorder".to_owned())];
    let (_, _) = listed(&ws);
    let recorders = artifacts(&ws);
    assert_eq!(recorders.len(), 1);
    std::fs::copy(crate::support::plugin("noop"), ws.config.plugins.join("noop.wasm")).unwrap();
    assert_eq!(listed(&ws).0, right);
    let noop = artifacts(&ws).into_iter().find(|p| !recorders.contains(p)).unwrap();

    // Another plugin's artifact in the recorder's place.
    std::fs::copy(&noop, &recorders[0]).unwrap();
    let (names, said) = listed(&ws);
    assert_eq!(names, right, "the recorder's file loads the recorder");
    assert!(said.contains("failed its check; compiling it again"), "{said}");
    assert_eq!(listed(&ws).1, "", "compiled again, the artifact is the host's own once more");

    // Code changed in the middle of the artifact (as a `ud2` patched into `.text` would be).
    let mut bytes = std::fs::read(&recorders[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 16].copy_from_slice(&[0x0f, 0x0b].repeat(8));
    std::fs::write(&recorders[0], &bytes).unwrap();
    let (names, said) = listed(&ws);
    assert_eq!(names, right);
    assert!(said.contains("failed its check"), "{said}");
    ws.append(&[crate::support::event("test-a", "Tick", 1, serde_json::json!({}))]);
    ws.cli(&["run", "--quiet"]);
    assert_eq!(ws.nodes("Seen").len(), 1, "the host runs the plugin, not the patched code");
}

#[test]
fn a_cache_directory_others_may_write_is_refused_by_name() {
    let ws = private_workspace();
    std::fs::create_dir(&ws.config.cache).unwrap();
    std::fs::set_permissions(&ws.config.cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = ws.command(&["plugins", "list"]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains(&ws.config.cache.display().to_string()) && said.contains("may be written by others") && said.contains("chmod go-w"), "{said}");
    assert!(artifacts(&ws).is_empty(), "nothing was cached there");
}
