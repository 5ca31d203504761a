#!/usr/bin/env bash
# Usage: scripts/demo.sh   (what `make demo` runs, after `make venv`)
#
# Runs the example shop against the local Pi sandbox:
#   1. migrates the shop's database and seeds it (admin/admin and a few products);
#   2. starts the sandbox on 127.0.0.1:$SANDBOX_PORT, its state kept in
#      example_project/sandbox-state.json so Pioneers and payments survive a restart;
#   3. starts the shop on 127.0.0.1:$SHOP_PORT (Django's runserver, DEBUG on);
#   4. prints the URLs, then waits; Ctrl-C (or SIGTERM) stops both servers. If either stops on
#      its own, the other is stopped too and the script exits with an error.
# Ports: SHOP_PORT (default 8000) and SANDBOX_PORT (default 8765). SANDBOX_STATE: the sandbox's
# state file (default example_project/sandbox-state.json). VENV: the virtualenv (default .venv).
# The shop's database is its DATABASE_URL (default example_project/db.sqlite3).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=${VENV:-.venv}
PY="$(cd "$VENV" && pwd)/bin/python"
SHOP_PORT=${SHOP_PORT:-8000}
SANDBOX_PORT=${SANDBOX_PORT:-8765}
SHOP_URL="http://127.0.0.1:$SHOP_PORT"
SANDBOX_URL="http://127.0.0.1:$SANDBOX_PORT"
SANDBOX_STATE=${SANDBOX_STATE:-example_project/sandbox-state.json}

# The shop talks to the sandbox started below, whatever example_project/.env says.
export DJANGO_SETTINGS_MODULE=config.settings
export PI_API_BASE_URL="$SANDBOX_URL" PI_API_KEY=sandbox-api-key PI_SANDBOX=on PI_HORIZON_URL=

pids=()
stop() {
    trap - INT TERM EXIT
    if ((${#pids[@]})); then
        echo
        echo "Stopping the shop and the sandbox..."
        kill -TERM "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
}
# After stopping both, die of the same signal: the caller (make, a shell) then sees an interrupt,
# not a failure ("make: *** [Makefile] Interrupt" rather than "Error 130").
trap 'stop; kill -INT $$' INT
trap 'stop; kill -TERM $$' TERM
trap stop EXIT

# Wait until a URL answers (any HTTP status), or fail after 30 s.
wait_for() {
    "$PY" - "$1" <<'PYTHON'
import sys, time, urllib.error, urllib.request
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(sys.argv[1], timeout=2)
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(f"{sys.argv[1]} did not answer within 30 s")
PYTHON
}

echo "=== migrating and seeding the shop ==="
(cd example_project && "$PY" manage.py migrate --noinput && "$PY" manage.py seed_shop)

echo "=== starting the Pi sandbox and the shop ==="
"$PY" -m django_pi_payments.sandbox --port "$SANDBOX_PORT" \
    --state-file "$SANDBOX_STATE" &
pids+=($!)
(cd example_project && exec "$PY" manage.py runserver --noreload "127.0.0.1:$SHOP_PORT") &
pids+=($!)
wait_for "$SANDBOX_URL/sandbox/config"
wait_for "$SHOP_URL/"

cat <<BANNER

  The Pi Shop is running.

    Shop:     $SHOP_URL/
    Admin:    $SHOP_URL/admin/   (user admin, password admin)
    Sandbox:  $SANDBOX_URL/sandbox/payments   (the Pi Platform API simulator's control API)

  Sign in with Pi as any sandbox Pioneer, buy something and confirm in the Pi Wallet dialog.
  Press Ctrl-C to stop both servers.

BANNER

# Returns when either server exits, or at once when a signal arrives (the traps then run).
wait -n "${pids[@]}" || true
echo "A server stopped unexpectedly; see its output above." >&2
exit 1
