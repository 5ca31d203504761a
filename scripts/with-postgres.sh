#!/usr/bin/env bash
# Usage: scripts/with-postgres.sh CMD [ARGS...]
#
# Runs CMD against a throwaway PostgreSQL cluster:
#   * initdb in a fresh `mktemp -d` directory (as the `postgres` system user when run as root,
#     because initdb refuses root; as the current user otherwise),
#   * listening only on 127.0.0.1 at a free port, its unix socket inside the temp dir,
#   * trust auth, durability switched off (fsync, synchronous_commit, full_page_writes),
#   * database `pi_payments`, exported as DATABASE_URL=postgres://postgres@127.0.0.1:PORT/pi_payments.
# The cluster is always stopped and the temp dir removed (EXIT, INT, TERM), and the script
# exits with CMD's exit status.
#
# Environment: PG_BINDIR (default: /usr/lib/postgresql/15/bin, else the newest installed),
#              PG_DBNAME (default: pi_payments), PG_KEEP_LOG=1 to print the server log at the end.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

log() { echo "[with-postgres] $*" >&2; }

find_bindir() {
    if [[ -n "${PG_BINDIR:-}" ]]; then
        echo "$PG_BINDIR"
        return
    fi
    if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then
        echo /usr/lib/postgresql/15/bin
        return
    fi
    local newest
    newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$newest" ]]; then
        echo "$newest"
        return
    fi
    if command -v pg_config >/dev/null 2>&1; then
        pg_config --bindir
        return
    fi
    echo ""
}

PG_BINDIR=$(find_bindir)
if [[ -z "$PG_BINDIR" || ! -x "$PG_BINDIR/initdb" || ! -x "$PG_BINDIR/pg_ctl" ]]; then
    log "ERROR: PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin; set PG_BINDIR)."
    log "       On Debian: apt-get install postgresql-15"
    exit 2
fi

PYTHON=${PYTHON:-python3}
DBNAME=${PG_DBNAME:-pi_payments}

if [[ $(id -u) -eq 0 ]]; then
    if ! id postgres >/dev/null 2>&1; then
        log "ERROR: running as root but there is no 'postgres' system user (initdb refuses root)."
        exit 2
    fi
    # Root's TMPDIR may not be reachable by postgres: always use /tmp.
    PGTMP=$(mktemp -d /tmp/pi-pg.XXXXXX)
    chown postgres: "$PGTMP"
    RUN_AS=(runuser -u postgres --)
else
    PGTMP=$(mktemp -d "${TMPDIR:-/tmp}/pi-pg.XXXXXX")
    RUN_AS=()
fi
chmod 700 "$PGTMP"
PGDATA_DIR="$PGTMP/data"
PGLOG="$PGTMP/postgres.log"
STARTED=0

# Run a PostgreSQL binary as the cluster owner, from a directory it can read.
pg() {
    (cd "$PGTMP" && "${RUN_AS[@]}" "$PG_BINDIR/$1" "${@:2}")
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ $STARTED -eq 1 ]]; then
        if [[ "${PG_KEEP_LOG:-0}" == 1 && -f "$PGLOG" ]]; then
            log "server log:"
            cat "$PGLOG" >&2 || true
        fi
        if ! pg pg_ctl -D "$PGDATA_DIR" -m fast -w -t 30 stop >/dev/null 2>&1; then
            # Last resort: kill the postmaster by the pid in its pid file.
            local pid
            pid=$(head -n 1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)
            if [[ -n "$pid" ]]; then
                log "pg_ctl stop failed; killing postmaster $pid"
                kill -9 "$pid" 2>/dev/null || true
            fi
        fi
        log "stopped PostgreSQL on port $PORT"
    fi
    rm -rf "$PGTMP"
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

log "initdb in $PGTMP (PostgreSQL binaries: $PG_BINDIR${RUN_AS:+, as user postgres})"
pg initdb -D "$PGDATA_DIR" -U postgres -A trust -E UTF8 --locale=C >"$PGTMP/initdb.log" 2>&1 || {
    cat "$PGTMP/initdb.log" >&2
    log "ERROR: initdb failed"
    exit 1
}

cat >"$PGDATA_DIR/pg_hba.conf" <<'EOF'
# throwaway test cluster: trust local connections only
local   all   all                 trust
host    all   all   127.0.0.1/32  trust
EOF

# A free port can be taken between the check and the start: try a few times.
for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    cat >"$PGDATA_DIR/postgresql.auto.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$PGTMP'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    if pg pg_ctl -D "$PGDATA_DIR" -l "$PGLOG" -w -t 60 start >/dev/null 2>&1; then
        STARTED=1
        break
    fi
    log "start on port $PORT failed (attempt $attempt)"
    tail -n 20 "$PGLOG" >&2 2>/dev/null || true
done
if [[ $STARTED -ne 1 ]]; then
    log "ERROR: could not start PostgreSQL"
    exit 1
fi

pg createdb -h 127.0.0.1 -p "$PORT" -U postgres "$DBNAME"
export DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/$DBNAME"
log "PostgreSQL $("$PG_BINDIR/postgres" --version | awk '{print $3}') ready: DATABASE_URL=$DATABASE_URL"

set +e
"$@"
status=$?
set -e
exit "$status"
