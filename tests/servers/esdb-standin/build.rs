//! Compiles the server side of EventStoreDB's gRPC API from the protocol files
//! the `eventstore` client crate ships, so that the stand-in speaks exactly
//! what the client does. `protox` compiles them without a `protoc` binary.

use std::path::PathBuf;
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = client_protos()?;
    let files = ["shared.proto", "streams.proto", "persistent.proto", "serverfeatures.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={}", protos.join(file).display());
    }
    let descriptors = protox::compile(files, [&protos])?;
    tonic_build::configure().build_client(false).generate_default_stubs(true).compile_fds(descriptors)?;
    Ok(())
}

/// The `protos` directory of the `eventstore` package this workspace locks:
/// in Cargo's registry, where Cargo unpacked it to build the host, or else
/// where `cargo metadata` says it is.
fn client_protos() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let lock = manifest_dir.ancestors().map(|d| d.join("Cargo.lock")).find(|p| p.exists()).ok_or("no Cargo.lock above the stand-in")?;
    println!("cargo:rerun-if-changed={}", lock.display());
    let version = locked_version(&std::fs::read_to_string(&lock)?, "eventstore").ok_or("Cargo.lock holds no `eventstore` package")?;
    let cargo_home = std::env::var_os("CARGO_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(registry) = cargo_home.map(|h| h.join("registry").join("src")) {
        for index in std::fs::read_dir(&registry).into_iter().flatten().flatten() {
            let dir = index.path().join(format!("eventstore-{version}")).join("protos");
            if dir.join("streams.proto").exists() {
                return Ok(dir);
            }
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo).args(["metadata", "--format-version", "1"]).current_dir(&manifest_dir).output()?;
    if !output.status.success() {
        return Err(format!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "eventstore")
        .and_then(|p| p["manifest_path"].as_str())
        .ok_or("the workspace does not depend on the `eventstore` crate")?;
    let dir = PathBuf::from(manifest).parent().ok_or("a manifest without a directory")?.join("protos");
    if !dir.join("streams.proto").exists() {
        return Err(format!("{} holds no streams.proto", dir.display()).into());
    }
    Ok(dir)
}

/// The version of `package` in a Cargo.lock.
fn locked_version(lock: &str, package: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{package}\"") {
            let version = lines.next()?.trim().strip_prefix("version = \"")?.strip_suffix('"')?;
            return Some(version.to_owned());
        }
    }
    None
}
