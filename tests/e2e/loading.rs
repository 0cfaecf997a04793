//! Bad plugins are refused at load with a message that names the file and the
//! fix, and the host does not start half-configured.

use crate::support::{event, plugin, Workspace};

fn load_error(ws: &Workspace) -> String {
    match projector::app::load_plugins(&ws.config) {
        Ok(_) => panic!("the plugins loaded"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn a_file_that_is_not_wasm_is_refused() {
    let ws = Workspace::new(&["interview-graph"]);
    std::fs::write(ws.config.plugins.join("broken.wasm"), b"not wasm at all").unwrap();
    let error = load_error(&ws);
    assert!(error.contains("broken.wasm") && error.contains("not a valid WebAssembly component"), "{error}");
}

#[test]
fn a_core_module_is_refused() {
    let ws = Workspace::new(&[]);
    std::fs::write(ws.config.plugins.join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let error = load_error(&ws);
    assert!(error.contains("core.wasm") && error.contains("component"), "{error}");
}

#[test]
fn a_component_of_another_world_is_refused_with_what_it_exports() {
    let ws = Workspace::new(&["wrong-world"]);
    let error = load_error(&ws);
    assert!(error.contains("wrong-world.wasm"), "{error}");
    assert!(error.contains("neither a projection nor an upcaster") && error.contains("`greet`"), "{error}");
}

#[test]
fn the_cli_refuses_to_run_with_a_bad_plugin_and_writes_nothing() {
    let ws = Workspace::new(&["interview-graph", "wrong-world"]);
    ws.append(&[event("Interview-1", "InterviewCreated", 1, serde_json::json!({"interview_id": "1", "project_id": "p", "title": "t"}))]);
    let out = ws.command(&["run", "--quiet"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("wrong-world.wasm"), "{stderr}");
    assert!(!ws.path("graph.db").exists() || ws.export().is_empty(), "something was written");
    assert!(plugin("interview-graph").exists());
}

#[test]
fn a_projection_that_claims_another_s_label_is_refused_at_load_and_at_swap() {
    let ws = Workspace::new(&["recorder", "adversary-trespasser"]);
    let error = load_error(&ws);
    assert!(error.contains("`adversary` and `recorder` both write label `Seen`") || error.contains("`recorder` and `adversary` both write label `Seen`"), "{error}");
    assert!(error.contains("declare it shared"), "{error}");

    // The same build dropped into a running host is refused; the running build stays.
    let ws = Workspace::new(&["recorder", "adversary"]);
    let plugins = ws.plugins();
    let sink: std::sync::Arc<dyn projector::sink::Sink> = std::sync::Arc::from(ws.graph());
    let pipeline = projector::app::Pipeline::start(&ws.config, &plugins, sink, std::sync::Arc::default()).unwrap();
    std::fs::copy(plugin("adversary-trespasser"), ws.config.plugins.join("adversary.wasm")).unwrap();
    let report = pipeline.swapper().reload(Some("adversary")).unwrap();
    assert!(report.swapped.is_empty(), "{report:?}");
    assert!(report.refused.iter().any(|r| r.contains("both write label `Seen`")), "{report:?}");
    ws.append(&[event("test-1", "Poke", 1, serde_json::json!({}))]);
    let done = pipeline.run(&|_| Ok(Box::new(ws.log())), projector::router::Until::CaughtUp, &std::sync::atomic::AtomicBool::new(false)).unwrap();
    assert_eq!(done.parked, 0, "the running adversary build stayed and wrote only its own label");
}

#[test]
fn a_link_out_of_the_plugins_directory_is_refused_and_nothing_of_a_non_wasm_file_is_printed() {
    let ws = Workspace::new(&["recorder"]);
    let secret = ws.path("secret.txt");
    std::fs::write(&secret, "root:x:0:0:the secret line\n").unwrap();
    std::os::unix::fs::symlink(&secret, ws.config.plugins.join("passwd.wasm")).unwrap();
    let error = load_error(&ws);
    assert!(error.contains("passwd.wasm") && error.contains("outside the plugins directory"), "{error}");
    assert!(!error.contains("root") && !error.contains("0x72"), "nothing of the file is shown: {error}");

    // The same file copied in is refused as not WebAssembly, still without its bytes.
    std::fs::remove_file(ws.config.plugins.join("passwd.wasm")).unwrap();
    std::fs::copy(&secret, ws.config.plugins.join("passwd.wasm")).unwrap();
    let error = load_error(&ws);
    assert!(error.contains("passwd.wasm") && error.contains("does not begin with the WebAssembly header"), "{error}");
    assert!(!error.contains("root") && !error.contains("0x72"), "{error}");

    // A link to a build beside it, as a deployment that switches links makes, loads.
    std::fs::remove_file(ws.config.plugins.join("passwd.wasm")).unwrap();
    std::fs::rename(ws.config.plugins.join("recorder.wasm"), ws.config.plugins.join("recorder-0.1.0.wasm.build")).unwrap();
    std::os::unix::fs::symlink("recorder-0.1.0.wasm.build", ws.config.plugins.join("recorder.wasm")).unwrap();
    let plugins = projector::app::load_plugins(&ws.config).unwrap();
    assert_eq!(plugins.projections[0].name(), "recorder");
}

#[test]
fn a_manifest_past_the_limits_is_refused_at_load_with_the_limit_named() {
    let ws = Workspace::new(&["bloated"]);
    let out = ws.command(&["plugins", "list"]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("bloated.wasm") && said.contains("MAX_LABELS (256)"), "{said}");
    assert!(said.len() < 4096, "the refusal is short: {} bytes", said.len());
}

#[test]
fn a_plugins_directory_anyone_may_write_and_a_plugin_that_is_not_a_file_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new(&["recorder"]);
    let fifo = ws.config.plugins.join("pipe.wasm");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let error = load_error(&ws);
    assert!(error.contains("pipe.wasm") && error.contains("not a regular file"), "{error}");
    std::fs::remove_file(&fifo).unwrap();

    std::fs::set_permissions(&ws.config.plugins, std::fs::Permissions::from_mode(0o777)).unwrap();
    let error = load_error(&ws);
    assert!(error.contains("may be written by anyone") && error.contains("chmod o-w"), "{error}");
}
