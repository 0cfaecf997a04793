#!/usr/bin/env bash
# Builds plugins written in Python and JavaScript into components, installing
# their toolchains (pinned versions, into .cache/toolchains/) when missing:
#   Python (a directory with app.py):   componentize-py from PyPI (CPython in wasm; imports WASI)
#   JavaScript (a directory with one .js file): componentize-qjs from npm (QuickJS; WASI stubbed out)
# Usage: plugins/build-lang.sh [--out DIR] [plugin-dir ...]
#   default: the audit-trail examples, into target/examples/; a plugin NAME becomes OUT/NAME.wasm
set -euo pipefail
cd "$(dirname "$0")/.."

COMPONENTIZE_PY_VERSION=0.25.1
COMPONENTIZE_QJS_VERSION=0.4.5
TOOLS=.cache/toolchains
PY_TOOL=$TOOLS/python/bin/componentize-py
JS_TOOL=$TOOLS/js/node_modules/.bin/componentize-qjs

# Installs Debian packages, when a command the build needs is missing.
apt_install() {
    echo "plugins: installing $* with apt (one time)" >&2
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

python_tool() {
    if ! "$PY_TOOL" --version 2>/dev/null | grep -q "$COMPONENTIZE_PY_VERSION"; then
        echo "plugins: installing componentize-py $COMPONENTIZE_PY_VERSION from PyPI (one time)" >&2
        command -v python3 >/dev/null || apt_install python3 python3-venv
        python3 -m venv "$TOOLS/python" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$TOOLS/python"; }
        "$TOOLS/python/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
    fi
}

js_tool() {
    if ! [ -x "$JS_TOOL" ] || ! grep -q "\"version\": \"$COMPONENTIZE_QJS_VERSION\"" "$TOOLS/js/node_modules/componentize-qjs/package.json"; then
        echo "plugins: installing componentize-qjs $COMPONENTIZE_QJS_VERSION from npm (one time)" >&2
        command -v npm >/dev/null || apt_install nodejs npm
        mkdir -p "$TOOLS/js"
        npm install --silent --no-save --no-audit --no-fund --prefix "$TOOLS/js" "componentize-qjs@$COMPONENTIZE_QJS_VERSION" 2>&1 \
            | grep -v 'Unknown user config' >&2 || true
    fi
}

OUT=target/examples
if [ "${1:-}" = "--out" ]; then OUT=$2; shift 2; fi
DIRS=("$@")
[ ${#DIRS[@]} -gt 0 ] || DIRS=(plugins/audit-trail-py plugins/audit-trail-js)
mkdir -p "$OUT"
for dir in "${DIRS[@]}"; do
    name=$(basename "$dir")
    js=("$dir"/*.js)
    if [ -f "$dir/app.py" ]; then
        python_tool
        "$PY_TOOL" -d wit -w projection componentize app -p "$dir" -o "$OUT/$name.wasm" >/dev/null
    elif [ ${#js[@]} -eq 1 ] && [ -f "${js[0]}" ]; then
        js_tool
        "$JS_TOOL" --wit wit --world projection --js "${js[0]}" --sync --stub-wasi -o "$OUT/$name.wasm" >/dev/null
    else
        echo "plugins: $dir has neither app.py (Python) nor one .js file (JavaScript)" >&2
        exit 2
    fi
done
echo "plugins: built ${DIRS[*]}" >&2
