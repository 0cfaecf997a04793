//! Tells the binary which wasmtime it was built with (from Cargo.lock) and
//! which plugin contract it speaks (from wit/world.wit), for `projector_build_info`.

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (lock, world) = (root.join("Cargo.lock"), root.join("wit/world.wit"));
    println!("cargo:rerun-if-changed={}", lock.display());
    println!("cargo:rerun-if-changed={}", world.display());
    let lock = std::fs::read_to_string(&lock).unwrap_or_default();
    let wasmtime = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"wasmtime\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map_or("unknown", |v| v.trim_end_matches('"'));
    let world = std::fs::read_to_string(&world).unwrap_or_default();
    let contract = world
        .lines()
        .find_map(|l| l.trim().strip_prefix("package "))
        .map_or("unknown", |p| p.trim_end_matches(';'));
    println!("cargo:rustc-env=PROJECTOR_WASMTIME_VERSION={wasmtime}");
    println!("cargo:rustc-env=PROJECTOR_CONTRACT={contract}");
}
