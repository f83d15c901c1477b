# Helpers for end-to-end tests. Each test is a bash script that sources this
# file, drives build/moontask and psql against $DATABASE_URL, and asserts on
# what the database holds.
set -euo pipefail
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$E2E_DIR/../.." && pwd)
MOONTASK_BIN=${MOONTASK_BIN:-$ROOT/build/moontask}
: "${DATABASE_URL:?DATABASE_URL must point at a test database}"
cd "$ROOT"

mt() { "$MOONTASK_BIN" --config tests/e2e/config.lua --database-url "$DATABASE_URL" "$@"; }

sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -c "$1"; }

# A clean slate: no tasks, no recurring schedules (a runtime would fire
# them into the next test), an empty row table.
reset_db() {
  sql "DELETE FROM moontask.tasks;
       DO \$\$ BEGIN
         IF to_regclass('moontask.schedules') IS NOT NULL THEN
           DELETE FROM moontask.schedules;
         END IF;
       END \$\$;
       DROP TABLE IF EXISTS e2e_rows;
       CREATE TABLE e2e_rows (task_id bigint, n bigint, at timestamptz DEFAULT clock_timestamp())" >/dev/null
}

fail() { echo "FAIL: $*" >&2; exit 1; }

assert_eq() { # expected actual what
  [ "$1" == "$2" ] || fail "$3: expected '$1', got '$2'"
}

assert_contains() { # haystack needle what
  [[ "$1" == *"$2"* ]] || fail "$3: '$1' does not contain '$2'"
}

# Runs a command that must fail with exit code $1; its stderr is in $ERR.
expect_exit() {
  local want=$1
  shift
  local rc=0
  ERR=$("$@" 2>&1 >/dev/null) || rc=$?
  [ "$rc" -eq "$want" ] || fail "'$*' exited $rc, expected $want (stderr: $ERR)"
}

# Waits up to $2 seconds for SQL $1 to return 't'.
wait_for() {
  local deadline=$((SECONDS + $2))
  while [ "$(sql "$1")" != "t" ]; do
    [ $SECONDS -lt $deadline ] || fail "timed out waiting for: $1"
    sleep 0.1
  done
}

# Starts `moontask ARGS` in the background (the binary itself, so that
# signals reach it); its PID is in $MT_PID.
mt_start() {
  "$MOONTASK_BIN" --config "${MT_CONFIG:-tests/e2e/config.lua}" --database-url "$DATABASE_URL" "$@" 2>/dev/null &
  MT_PID=$!
}

# The hardening probes (tests/e2e/hardening/probe/*.lua): tasks that attack
# the runtime, and a table they write what they found into.
probe() { mt --tasks tests/e2e/hardening "$@"; }
probe_setup() {
  reset_db
  sql "DROP TABLE IF EXISTS probe_log; DROP SEQUENCE IF EXISTS probe_seq;
       CREATE TABLE probe_log (id serial, task text, note text);
       CREATE SEQUENCE probe_seq" >/dev/null
}
