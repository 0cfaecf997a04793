#!/usr/bin/env bash
# A real Bolt/Cypher server for the Neo4j sink's tests: ArcadeDB with its Bolt
# plugin, from PyPI (a wheel that bundles its own Java runtime). Listens on
# loopback only. The download is cached in .cache/arcadedb/.
#
#   tests/servers/bolt.sh start     install if needed, start on an empty database, wait until ready
#   tests/servers/bolt.sh stop      stop the server this script started (by PID)
#   tests/servers/bolt.sh restart   stop it and start it again on the same data
#
# With PROJECTOR_TEST_NEO4J_URI set, tests use that server instead and this
# script does nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=26.10.2.post1
CACHE=.cache/arcadedb
PKG=$CACHE/$VERSION
RUN=target/bolt-server
PORT=${PROJECTOR_TEST_BOLT_PORT:-17687}
HTTP_PORT=${PROJECTOR_TEST_BOLT_HTTP_PORT:-12480}
PASSWORD=projector-test

install() {
    [ -x "$PKG/arcadedb_embedded/jre/bin/java" ] && return
    echo "bolt server: downloading ArcadeDB $VERSION from PyPI (one time, ~70 MB)" >&2
    mkdir -p "$CACHE"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
        --implementation cp --abi cp311 --platform manylinux_2_34_x86_64 \
        "arcadedb-embedded==$VERSION" -d "$CACHE/wheel"
    rm -rf "$PKG.tmp" && mkdir -p "$PKG.tmp"
    python3 -m zipfile -e "$CACHE"/wheel/arcadedb_embedded-"$VERSION"-*.whl "$PKG.tmp"
    chmod +x "$PKG.tmp/arcadedb_embedded/jre/bin/"*
    mv "$PKG.tmp" "$PKG"
}

start() {
    if [ -n "${PROJECTOR_TEST_NEO4J_URI:-}" ]; then
        echo "bolt server: using $PROJECTOR_TEST_NEO4J_URI" >&2
        return
    fi
    if [ -f "$RUN/pid" ] && kill -0 "$(cat "$RUN/pid")" 2>/dev/null; then
        return
    fi
    install
    rm -rf "$RUN" && mkdir -p "$RUN/data"
    launch
}

# Whether the server's HTTP API says the test database exists.
database_open() {
    command -v curl >/dev/null || return 0
    curl -sf -u "root:$PASSWORD" "http://127.0.0.1:$HTTP_PORT/api/v1/exists/neo4j" 2>/dev/null | grep -q '"result":true'
}

launch() {
    local root
    root=$(pwd)
    # From its own directory: the server writes its logs under the working directory.
    (cd "$RUN" && exec nohup "$root/$PKG/arcadedb_embedded/jre/bin/java" -Xms256m -Xmx1g -XX:+UseSerialGC \
        -cp "$root/$PKG/arcadedb_embedded/jars/*" \
        -Darcadedb.server.rootPath="$root/$RUN/data" \
        -Darcadedb.server.rootPassword=$PASSWORD \
        -Darcadedb.server.mode=test \
        -Darcadedb.server.httpIncomingHost=127.0.0.1 -Darcadedb.server.httpIncomingPort=$HTTP_PORT \
        -Darcadedb.server.plugins=Bolt:com.arcadedb.bolt.BoltProtocolPlugin \
        -Darcadedb.bolt.host=127.0.0.1 -Darcadedb.bolt.port=$PORT -Darcadedb.bolt.defaultDatabase=neo4j \
        '-Darcadedb.server.defaultDatabases=neo4j[root]' \
        com.arcadedb.server.ArcadeDBServer > server.log 2>&1) &
    echo $! > "$RUN/pid"
    for _ in $(seq 1 120); do
        # Ready when Bolt listens and the database is open (the port opens first).
        if grep -q "started" "$RUN/server.log" 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && database_open; then
            echo "bolt server: ArcadeDB ready on bolt://127.0.0.1:$PORT (pid $(cat "$RUN/pid"))" >&2
            return
        fi
        if ! kill -0 "$(cat "$RUN/pid")" 2>/dev/null; then
            echo "bolt server: ArcadeDB exited; its log:" >&2
            tail -20 "$RUN/server.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "bolt server: ArcadeDB did not become ready in 60 s; see $RUN/server.log" >&2
    exit 1
}

stop() {
    [ -f "$RUN/pid" ] || return 0
    local pid
    pid=$(cat "$RUN/pid")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$RUN/pid"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    restart) stop; launch ;;
    *) echo "usage: $0 start|stop|restart" >&2; exit 2 ;;
esac
