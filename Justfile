# Projector's tasks. `just --list` shows them.

set shell := ["bash", "-euo", "pipefail", "-c"]

projector := "target/release/projector"

# List the tasks
default:
    @just --list

# Build the plugins into WebAssembly components (installs the wasm toolchain if missing)
plugins:
    plugins/build.sh

# Build the host (release) and the plugins
build: plugins
    cargo build --release -p projector

# Project sample interview events into the embedded graph and show the read model
demo events="20000": build
    #!/usr/bin/env bash
    set -euo pipefail
    export PROJECTOR_SOURCE=embedded:.projector/demo/events.db PROJECTOR_SINK=embedded:.projector/demo/graph.db
    rm -rf .projector/demo && mkdir -p .projector/demo
    echo "== generating {{events}} sample interview events"
    {{projector}} sample --events {{events}} > .projector/demo/sample.jsonl
    {{projector}} import .projector/demo/sample.jsonl
    echo "== plugins"
    {{projector}} plugins list
    echo "== projecting"
    {{projector}} run
    echo "== read model"
    {{projector}} graph stats
    echo "== example nodes"
    {{projector}} graph nodes Interview --limit 2
    {{projector}} graph nodes Sentence --limit 2
    {{projector}} graph nodes Analysis --limit 2
    echo "== look further: the demo's files are under .projector/demo/; point the commands at them first"
    echo "   export PROJECTOR_SOURCE=$PROJECTOR_SOURCE PROJECTOR_SINK=$PROJECTOR_SINK"
    echo "   {{projector}} graph stats    (or: graph export, graph nodes LABEL, parked list, plugins list)"
    echo "   or watch it run: {{projector}} run --follow, then open http://127.0.0.1:7931/ (the console) or run {{projector}} status"

# Run every test: plugin unit tests, host unit tests, end-to-end tests with real plugins, a real Bolt server and a real browser (installs Chromium if missing)
test: plugins
    #!/usr/bin/env bash
    set -euo pipefail
    tests/servers/browser.sh
    tests/servers/bolt.sh start
    trap 'tests/servers/bolt.sh stop' EXIT
    cargo test --release --workspace

# Run the source and sink suites against real KurrentDB and Neo4j servers in Docker (tests/servers/live.compose.yaml; versions from KURRENTDB_IMAGE and NEO4J_IMAGE). `just test` needs neither
test-live: plugins
    #!/usr/bin/env bash
    set -euo pipefail
    compose="docker compose -f tests/servers/live.compose.yaml"
    if ! command -v docker >/dev/null 2>&1 || ! docker compose version >/dev/null 2>&1; then
        echo "just test-live needs Docker with its compose plugin (\`docker compose\`), and pulls ${KURRENTDB_IMAGE:-docker.kurrent.io/kurrent-latest/kurrentdb:latest} and ${NEO4J_IMAGE:-neo4j:5}; \`just test\` runs without them" >&2
        exit 2
    fi
    if ! docker info >/dev/null 2>&1; then
        echo "just test-live: the Docker daemon does not answer (\`docker info\` fails): start it, or give DOCKER_HOST" >&2
        exit 2
    fi
    $compose up -d --wait
    trap '$compose down -v' EXIT
    export ESDB_CONNECTION_STRING='esdb://127.0.0.1:22113?tls=false'
    export PROJECTOR_TEST_ESDB_RESTART="$compose restart kurrentdb"
    export PROJECTOR_TEST_NEO4J_URI=bolt://127.0.0.1:27687 PROJECTOR_TEST_NEO4J_USER=neo4j PROJECTOR_TEST_NEO4J_PASSWORD=projector-live-test
    cargo test --release -p projector --test e2e -- sources neo4j

# Run the tests whose guarantees involve time (deadlines, retries, stops, swaps) again with one core kept busy by another process: a guarantee must not depend on an idle machine
test-under-load: plugins
    #!/usr/bin/env bash
    set -euo pipefail
    ( while :; do :; done ) &
    busy=$!
    trap 'kill $busy' EXIT
    cargo test --release -p projector --test e2e -- sandbox isolation parking shutdown swap

# Remove the demo's files and the compiled-plugin cache
clean:
    rm -rf .projector

# Measure throughput, Wasm overhead, scaling, memory, hot-swap stalls, per-event cost by plugin language, and the Neo4j sink against the raw driver (about 14 minutes on 2 cores)
bench: build
    #!/usr/bin/env bash
    set -euo pipefail
    cargo bench -p projector --bench pipeline
    cargo bench -p projector --bench swap
    cargo bench -p projector --bench isolation
    plugins/build-lang.sh
    cargo bench -p projector --bench languages
    tests/servers/bolt.sh start
    trap 'tests/servers/bolt.sh stop' EXIT
    cargo bench -p projector --bench neo4j
