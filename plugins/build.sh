#!/usr/bin/env bash
# Builds every Rust plugin into a WebAssembly component in target/plugins/, the
# test plugins (tests/plugins/) into target/test-plugins/, and the audit-trail
# examples (Rust, and with plugins/build-lang.sh Python and JavaScript) into
# target/examples/. Installs a toolchain that can build for wasm when none is found:
#   1. rustup with the wasm32-unknown-unknown target installed: used as it is;
#   2. otherwise Debian's rustc-web, which ships the std source: std is built for
#      wasm with -Zbuild-std and linked by wasm-component-ld (installed with apt).
# Usage: plugins/build.sh [crate ...]   (default: every plugin crate)
#        plugins/build.sh --dir DIR     a plugin crate of its own (as `projector new` makes): DIR/NAME.wasm
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=wasm32-unknown-unknown
STANDALONE=
if [ "${1:-}" = "--dir" ]; then STANDALONE=$(cd "$2" && pwd); shift 2; fi
CRATES=("$@")
[ ${#CRATES[@]} -gt 0 ] || CRATES=(interview-graph interview-upcasters audit-trail recorder wrong-world noop adversary shaper bloated)

DEBIAN_RUSTC=/usr/bin/rustc
DEBIAN_CARGO=/usr/bin/cargo
COMPONENT_LD=/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld
WASM_LD=/usr/lib/llvm-22/bin/wasm-ld

has_rustup_target() {
    command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx "$TARGET"
}

install_debian_toolchain() {
    echo "plugins: installing Debian's rustc-web toolchain for $TARGET (one time, ~1 min)" >&2
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        rustc-web cargo-web rust-web-src rust-web-llvm lld-22 >/dev/null
}

args=()
for c in "${CRATES[@]}"; do args+=(-p "$c"); done

if has_rustup_target; then
    # rustup ships wasm-component-ld and wasm-ld beside its rustc.
    BIN="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin"
    COMPONENT_LD="$BIN/wasm-component-ld"
    WASM_LD="$BIN/gcc-ld/wasm-ld"
    CARGO=(cargo)
else
    [ -x "$DEBIAN_RUSTC" ] && [ -x "$COMPONENT_LD" ] && [ -x "$WASM_LD" ] || install_debian_toolchain
    CARGO=(env RUSTC_BOOTSTRAP=1 RUSTC="$DEBIAN_RUSTC" "$DEBIAN_CARGO")
    BUILD_STD=(-Zbuild-std=std,panic_abort)
fi
build() {
    "${CARGO[@]}" build --quiet --profile plugin --target "$TARGET" ${BUILD_STD[@]+"${BUILD_STD[@]}"} \
        --config "target.$TARGET.linker='$COMPONENT_LD'" \
        --config "target.$TARGET.rustflags=['-Clink-arg=--wasm-ld-path=$WASM_LD']" "$@"
}

if [ -n "$STANDALONE" ]; then
    # Shares the repository's target directory, so std and the SDK are built once.
    name=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$STANDALONE/Cargo.toml" | head -1)
    build --manifest-path "$STANDALONE/Cargo.toml" --target-dir target
    cp "target/$TARGET/plugin/${name//-/_}.wasm" "$STANDALONE/$name.wasm"
    echo "plugins: built $STANDALONE/$name.wasm" >&2
    exit 0
fi

# Other builds of test plugins first, as CRATE-FEATURE.wasm: the recorder's
# fixed build and one with a new read-model version (replay and swap tests), and
# an adversary that claims the recorder's label (the write-scope test).
for variant in recorder:healed recorder:read-model-2 adversary:trespasser; do
    crate=${variant%%:*} feature=${variant#*:}
    if [[ " ${CRATES[*]} " == *" $crate "* ]]; then
        mkdir -p target/test-plugins
        build -p "$crate" --features "$crate/$feature"
        cp "target/$TARGET/plugin/$crate.wasm" "target/test-plugins/$crate-$feature.wasm"
    fi
done
build "${args[@]}"

for c in "${CRATES[@]}"; do
    case "$c" in
        audit-trail) out=target/examples ;;
        *) if [ -d "tests/plugins/$c" ]; then out=target/test-plugins; else out=target/plugins; fi ;;
    esac
    mkdir -p "$out"
    cp "target/$TARGET/plugin/${c//-/_}.wasm" "$out/$c.wasm"
done
echo "plugins: built ${CRATES[*]}" >&2
