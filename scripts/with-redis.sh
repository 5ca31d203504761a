#!/usr/bin/env bash
# Usage: scripts/with-redis.sh CMD [ARGS...]
#
# Runs CMD with a throwaway Redis server (loopback, free port, no persistence) and
# REDIS_URL=redis://127.0.0.1:PORT/0 exported. The server is always stopped (EXIT, INT, TERM)
# and the script exits with CMD's exit status.
#
# Without redis-server on PATH, CMD runs without REDIS_URL after a note; under CI=true that is an
# error instead (CI must exercise the Redis cache).
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

log() { echo "[with-redis] $*" >&2; }

REDIS_SERVER=${REDIS_SERVER:-$(command -v redis-server || true)}
if [[ -z "$REDIS_SERVER" && -x /usr/bin/redis-server ]]; then
    REDIS_SERVER=/usr/bin/redis-server
fi
if [[ -z "$REDIS_SERVER" ]]; then
    if [[ "${CI:-}" == "true" ]]; then
        log "ERROR: redis-server is not installed (CI=true requires it; apt-get install redis-server)."
        exit 2
    fi
    log "NOTE: redis-server not found; running without REDIS_URL (LocMem cache)."
    log "      Install it to test the Redis cache: apt-get install redis-server"
    unset REDIS_URL
    exec "$@"
fi

PYTHON=${PYTHON:-python3}
RTMP=$(mktemp -d "${TMPDIR:-/tmp}/pi-redis.XXXXXX")
REDIS_PID=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$REDIS_PID" ]] && kill -0 "$REDIS_PID" 2>/dev/null; then
        kill "$REDIS_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$REDIS_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
        log "stopped Redis on port $PORT"
    fi
    rm -rf "$RTMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    "$PYTHON" - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# PING over bash's /dev/tcp: no redis-cli needed.
redis_ping() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf 'PING\r\n' >&3
        reply=""
        read -r -t 1 reply <&3 || true
        [[ "$reply" == +PONG* ]]
    ) 2>/dev/null
}

started=0
for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    "$REDIS_SERVER" --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --dir "$RTMP" --logfile "$RTMP/redis.log" &
    REDIS_PID=$!
    for _ in $(seq 1 100); do
        if redis_ping "$PORT"; then
            started=1
            break
        fi
        kill -0 "$REDIS_PID" 2>/dev/null || break
        sleep 0.1
    done
    [[ $started -eq 1 ]] && break
    log "start on port $PORT failed (attempt $attempt)"
    tail -n 20 "$RTMP/redis.log" >&2 2>/dev/null || true
    kill "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=""
done
if [[ $started -ne 1 ]]; then
    log "ERROR: could not start redis-server"
    exit 1
fi

export REDIS_URL="redis://127.0.0.1:$PORT/0"
log "$("$REDIS_SERVER" --version | awk '{print $1, $2, $3}') ready: REDIS_URL=$REDIS_URL"

set +e
"$@"
status=$?
set -e
exit "$status"
