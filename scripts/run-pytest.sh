#!/usr/bin/env bash
# Usage: scripts/run-pytest.sh LABEL [PYTEST ARGS...]
#
# Runs the venv's pytest and reports which database/cache it ran on. pytest's own summary line
# stays the last line it prints. Exit status is pytest's, except that "no tests collected"
# (exit 5) is accepted with a warning unless PYTEST_REQUIRE_TESTS=1.
set -uo pipefail

label=${1:?usage: $0 LABEL [PYTEST ARGS...]}
shift
VENV=${VENV:-.venv}

db="sqlite"
if [[ -n "${DATABASE_URL:-}" ]]; then
    db="${DATABASE_URL%%://*}"
fi
cache="locmem"
[[ -n "${REDIS_URL:-}" ]] && cache="redis"
echo "[pytest:$label] database=$db cache=$cache: $VENV/bin/pytest $*" >&2

"$VENV/bin/pytest" "$@"
status=$?
if [[ $status -eq 5 && "${PYTEST_REQUIRE_TESTS:-0}" != 1 ]]; then
    echo "[pytest:$label] WARNING: no tests were collected (pytest exit 5); not treated as a failure." >&2
    exit 0
fi
exit "$status"
