#!/usr/bin/env bash
# Tests this projection: builds it, then handles sample-event.json with the real
# host and checks that the mutations are the ones in expected.json.
# PROJECTOR names the host binary (default: `projector` on PATH, else the checkout's build).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
projector=${PROJECTOR:-$(command -v projector || echo "$here/{{repo}}/target/release/projector")}
"$here/build.sh"
"$projector" plugins try "$here/{{name}}.wasm" --event "$here/sample-event.json" --expect "$here/expected.json"
