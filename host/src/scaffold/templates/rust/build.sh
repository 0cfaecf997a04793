#!/usr/bin/env bash
# Builds this projection into a WebAssembly component: {{name}}.wasm
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/{{repo}}/plugins/build.sh" --dir "$here"
