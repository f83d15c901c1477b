# Helpers for the fault suite (tests/faults/fault_*.sh, run by
# scripts/faults). A fault test is an end-to-end test: it sources
# tests/e2e/lib.sh (reset_db, sql, wait_for, mt_start, assert_eq, fail,
# skip, on_exit, the exit trap that kills its runtimes and prints their
# logs), strikes a runtime or its database with one fault, and asserts on
# what the database holds afterwards:
#
#   - every committed task completes,
#   - its effects happen exactly once (one row in e2e_rows, written by the
#     attempt that committed),
#   - no task stays `running` past its lease,
#
# and, in addition, that the runtime logged what happened.
#
# The tasks are tests/faults/tasks/faults/*.lua, the configuration
# tests/faults/config.lua (a lease of 3 s). FAULTS_FAST=1 (scripts/faults
# --fast) asks a test for its short version: fewer tasks and rounds, the
# same fault.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
FAULTS_DIR=$ROOT/tests/faults
MT_CONFIG=tests/faults/config.lua
FAULTS_FAST=${FAULTS_FAST:-0}

# `moontask` on the fault suite's configuration and tasks.
mtf() { "$MOONTASK_BIN" --config "$MT_CONFIG" --database-url "$DATABASE_URL" "$@"; }

# fast_or_full FAST FULL: the figure for this run.
fast_or_full() { if [ "$FAULTS_FAST" = 1 ]; then echo "$1"; else echo "$2"; fi; }

# A random number from $1 to $2 from bash's $RANDOM, which faults_seed
# seeded: the test prints its seed, and FAULTS_SEED=<seed> replays it.
rand_between() { echo $(($1 + RANDOM % ($2 - $1 + 1))); }
faults_seed() {
  FAULTS_SEED=${FAULTS_SEED:-$(($(date +%s%N) % 1000000))}
  RANDOM=$FAULTS_SEED
  echo "random seed: $FAULTS_SEED (FAULTS_SEED=$FAULTS_SEED replays its random moments)"
}

# Schedules $1 faults.insert tasks, each pausing $2 seconds inside its
# transaction after its write; $3 (default 0) spreads their run_at over
# that many seconds from now. Prints nothing.
schedule_inserts() {
  local n=$1 pause=$2 spread=${3:-0}
  sql "SELECT count(moontask.schedule('faults.insert',
         jsonb_build_object('pause', $pause::float8),
         now() + (random() * $spread) * interval '1 second'))
         FROM generate_series(1, $n)" >/dev/null
}

# How many tasks match the condition $1.
count_where() { sql "SELECT count(*) FROM moontask.tasks WHERE $1"; }

# The outcome every fault test asserts once the fault is over and a runtime
# runs again: all $1 tasks complete within $2 seconds (default 120), each
# with exactly one row, written by the attempt that committed, and none
# left running.
assert_exactly_once() {
  local n=$1 deadline=${2:-120}
  wait_for "SELECT count(*) = $n FROM moontask.tasks WHERE state = 'completed'" "$deadline"
  assert_eq "$n" "$(count_where "true")" "tasks"
  assert_eq 0 "$(count_where "state = 'running'")" "tasks still running"
  assert_eq "$n" "$(sql "SELECT count(*) FROM e2e_rows")" "rows (one per task)"
  assert_eq "$n" "$(sql "SELECT count(DISTINCT task_id) FROM e2e_rows")" "tasks with a row"
  assert_eq 0 "$(sql "SELECT count(*) FROM moontask.tasks t
                      WHERE NOT EXISTS (SELECT FROM e2e_rows r WHERE r.task_id = t.id)")" \
    "tasks completed without their row"
  # The row was written by the attempt that committed, the task's last:
  # a row from an earlier attempt would be an effect that survived its
  # attempt's end.
  assert_eq 0 "$(sql "SELECT count(*) FROM e2e_rows r JOIN moontask.tasks t ON t.id = r.task_id
                      WHERE r.n <> t.attempts")" "rows written by an attempt that was not the last"
}

# Waits up to $2 seconds until no task is `running` with a lease that
# lapsed: a live runtime's heartbeat rescues those within a third of the
# lease. $1 names the moment, for the failure message. (Meant for after a
# fault that lasted longer than the lease.)
assert_no_lapsed_lease() {
  local deadline=$((SECONDS + $2))
  while [ "$(count_where "state = 'running' AND locked_until < now()")" != 0 ]; do
    [ $SECONDS -lt $deadline ] ||
      fail "$1: tasks still running $2 s after their lease lapsed: $(sql "SELECT string_agg(id || ' ' || locked_by, ', ') FROM moontask.tasks WHERE state = 'running' AND locked_until < now()")"
    sleep 0.2
  done
}

# Waits up to $2 seconds until no task is `running` under the lease of
# the runtimes whose process ids are in $1 (space-separated; the lease name
# is host:pid:random): their tasks did not stay theirs past the lease.
assert_leases_returned() {
  local cond="false" p
  for p in $1; do cond+=" OR locked_by LIKE '%:$p:%'"; done
  wait_for "SELECT count(*) = 0 FROM moontask.tasks WHERE state = 'running' AND ($cond)" "$2"
}

# assert_logged FILE WHAT PATTERN...: FILE (a runtime's stderr) has a line
# matching one of the extended regular expressions.
assert_logged() {
  local file=$1 what=$2
  shift 2
  local p
  for p in "$@"; do
    grep -Eq -- "$p" "$file" && return 0
  done
  fail "the runtime did not log $what (looked for: $*); its log ends: $(tail -n 5 "$file")"
}

# Stops runtime $1 with SIGTERM and waits for it; fails unless it exits
# $2 (default 0): a runtime that recovered from a fault ends like any other.
stop_runtime() {
  local pid=$1 want=${2:-0} rc=0
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  assert_eq "$want" "$rc" "exit status of runtime $pid after SIGTERM"
}

# Whether process $1 is alive (and not a zombie).
alive() {
  local stat
  stat=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $stat != *Z* ]]
}

# A private PostgreSQL server for this test alone (moontask's embedded
# database, keyed by a fresh folder), for faults that restart or
# reconfigure the server. Points DATABASE_URL at it, migrates it, and stops
# it by its PID when the test exits. Sets OWN_DB_WORK, OWN_DB_PID and
# OWN_DB_ROOT.
own_db() {
  OWN_DB_WORK=$(mktemp -d "${TMPDIR:-/tmp}/moontask-fault-db.XXXXXX")
  OWN_DB_PID=""
  OWN_DB_ROOT=""
  on_exit own_db_cleanup
  DATABASE_URL=$(cd "$OWN_DB_WORK" && "$MOONTASK_BIN" db start 2>"$E2E_TMP/db-start.err") ||
    fail "cannot start a private PostgreSQL server: $(cat "$E2E_TMP/db-start.err")"
  own_db_status
  mtf migrate >/dev/null
  reset_db
}

own_db_status() {
  local status
  status=$(cd "$OWN_DB_WORK" && "$MOONTASK_BIN" db status)
  OWN_DB_PID=$(sed -n 's/^running (pid \([0-9]*\)) in \(.*\)$/\1/p' <<<"$status")
  OWN_DB_ROOT=$(sed -n 's/^running (pid \([0-9]*\)) in \(.*\)$/\2/p' <<<"$status")
  [ -n "$OWN_DB_PID" ] || fail "the private server is not running: $status"
}

# Stops the private server, waiting until its postmaster is gone: with
# SIGINT (the default), a fast shutdown (sessions terminated, open
# transactions rolled back, a checkpoint); with SIGQUIT, an immediate one
# (a crash: the next start recovers from the WAL).
own_db_stop() {
  kill -"${1:-INT}" "$OWN_DB_PID"
  local deadline=$((SECONDS + 60))
  while kill -0 "$OWN_DB_PID" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || fail "the private server did not stop within 60 s"
    sleep 0.1
  done
}

# Starts it again (it keeps its data) and waits until it takes connections.
own_db_start() {
  (cd "$OWN_DB_WORK" && "$MOONTASK_BIN" db start >/dev/null 2>"$E2E_TMP/db-start.err") ||
    fail "cannot start the private server again: $(cat "$E2E_TMP/db-start.err")"
  own_db_status
}

# From the exit trap: no command here may fail.
own_db_cleanup() {
  if [ -n "${OWN_DB_PID:-}" ] && kill -0 "$OWN_DB_PID" 2>/dev/null; then
    kill -INT "$OWN_DB_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$OWN_DB_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$OWN_DB_PID" 2>/dev/null
  fi
  case "${OWN_DB_ROOT:-}" in /var/tmp/moontask-*) rm -rf "$OWN_DB_ROOT" ;; esac
  rm -rf "${OWN_DB_WORK:-/nonexistent}"
}
