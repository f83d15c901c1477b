# Helpers for end-to-end tests. Each test is a bash script that sources this
# file, drives build/moontask and psql against $DATABASE_URL, and asserts on
# what the database holds.
#
# Files: a test writes only under $E2E_TMP, a fresh temporary folder, never
# into the checkout (the working directory is the repository root, for its
# relative paths: tests/e2e/config.lua, tests/e2e/tasks, ...).
#
# Skips: skip "why" exits 77; tests/e2e/run reports the test as skipped.
#
# Runtimes and their logs: mt_start runs `moontask` in the background with
# its stderr in a log file of its own; runtimes run in the foreground append
# theirs to $RUNTIME_LOG. When the test fails, its exit trap prints the tail
# of every such log, and then the failure again, last, where tests/e2e/run's
# excerpt shows it.
#
# Cleanup: lib.sh owns the EXIT trap. It kills every runtime mt_start started
# that is still alive (by its PID), runs what the test registered with
# on_exit (dropping roles, a database, ...) in reverse order, and removes
# $E2E_TMP. A test registers its cleanup with on_exit; a `trap ... EXIT` of
# its own would replace this one.
set -euo pipefail
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$E2E_DIR/../.." && pwd)
MOONTASK_BIN=${MOONTASK_BIN:-$ROOT/build/moontask}
: "${DATABASE_URL:?DATABASE_URL must point at a test database}"
cd "$ROOT"

E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/moontask-e2e.XXXXXX")
# python3 (the AWS tests' helpers, JSON fields) as the interpreter itself,
# found once and put first on PATH: behind a version manager's shim, such
# as pyenv's bash script, every start cost 0.3 s more, and a test starts it
# hundreds of times. A link, not a shell function, so that a helper started
# in the background is the process whose PID the test keeps.
if MT_PYTHON=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) &&
  [ -x "$MT_PYTHON" ] && mkdir "$E2E_TMP/bin" && ln -s "$MT_PYTHON" "$E2E_TMP/bin/python3"; then
  PATH=$E2E_TMP/bin:$PATH
fi
RUNTIME_LOG=$E2E_TMP/runtime.log
: >"$RUNTIME_LOG"
E2E_PIDS=()    # runtimes started by mt_start
E2E_LOGS=("$RUNTIME_LOG")
E2E_CLEANUP=() # commands registered with on_exit
E2E_FAILURE="" # fail()'s message
E2E_ERR=""     # the last command that failed, for a test ended by set -e

# Registers a command (one string, run with eval) for the exit trap.
on_exit() { E2E_CLEANUP+=("$1"); }

# Runs from the EXIT trap, possibly after a failure under set -e: every step
# tolerates failure, and the test's exit status is kept.
e2e_exit() {
  local status=$? err=$E2E_ERR pid i log
  trap - ERR
  set +e
  for pid in "${E2E_PIDS[@]}"; do
    # Only a runtime that is still our child: the PID of one the test
    # already waited for may belong to another process by now.
    [ "$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$$" ] || continue
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
    for log in "${E2E_LOGS[@]}"; do
      [ -s "$log" ] || continue
      echo "--- last lines of ${log##*/} (runtime stderr) ---" >&2
      tail -n 40 "$log" >&2
    done
    if [ -n "$E2E_FAILURE" ]; then
      echo "FAIL: $E2E_FAILURE" >&2
    else
      echo "FAIL: exit status $status${err:+ after $err}" >&2
    fi
  fi
  for ((i = ${#E2E_CLEANUP[@]} - 1; i >= 0; i--)); do
    eval "${E2E_CLEANUP[i]}"
  done
  rm -rf "$E2E_TMP"
  exit "$status"
}
trap e2e_exit EXIT
# Records where a command failed (and the calls that led there), for a
# test that set -e ends. -E: the trap also fires inside functions.
e2e_err() {
  local i where=""
  for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
    where+="${where:+ < }${BASH_SOURCE[i]##*/}:${BASH_LINENO[i - 1]}"
  done
  E2E_ERR="$where: $1"
}
set -E
trap 'e2e_err "$BASH_COMMAND"' ERR

mt() { "$MOONTASK_BIN" --config tests/e2e/config.lua --database-url "$DATABASE_URL" "$@"; }

sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -c "$1"; }

# A clean slate: no tasks, no recurring schedules (a runtime would fire
# them into the next test), nothing left to publish, no queues or task
# defaults, an empty row table.
reset_db() {
  sql "DELETE FROM moontask.tasks;
       DO \$\$ BEGIN
         IF to_regclass('moontask.schedules') IS NOT NULL THEN
           DELETE FROM moontask.schedules;
         END IF;
         IF to_regclass('moontask.outbox') IS NOT NULL THEN
           DELETE FROM moontask.outbox;
         END IF;
         IF to_regclass('moontask.queues') IS NOT NULL THEN
           DELETE FROM moontask.queues;
           DELETE FROM moontask.definitions;
         END IF;
       END \$\$;
       DROP TABLE IF EXISTS e2e_rows;
       CREATE TABLE e2e_rows (task_id bigint, n bigint, at timestamptz DEFAULT clock_timestamp())" >/dev/null
}

# Writes to $1 the end-to-end configuration (tests/e2e/config.lua) with the
# Lua table fields in $2 added, for a test that needs settings of its own.
e2e_config() { # file fields
  { sed '$d' tests/e2e/config.lua; printf '%s\n}\n' "$2"; } >"$1"
}

# The server's Unix socket (a TCP proxy's upstream), its database and user,
# from a URL of the form the embedded database prints: "sock db user", "-"
# for what the URL does not say.
url_parts() {
  python3 -c 'import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
q = urllib.parse.parse_qs(u.query)
host = q.get("host", [u.hostname or ""])[0]
port = q.get("port", [str(u.port or 5432)])[0]
print("%s/.s.PGSQL.%s" % (host, port) if host.startswith("/") else "-",
      urllib.parse.unquote(u.path.lstrip("/")) or "-",
      q.get("user", [u.username or "-"])[0])' "$DATABASE_URL"
}

# A TCP port on 127.0.0.1 that nothing listens on (now).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

fail() {
  E2E_FAILURE="$*"
  echo "FAIL: $*" >&2
  exit 1
}

# Ends the test as skipped (exit 77, which tests/e2e/run reports as such):
# for a test whose prerequisite (a tool, a server) is missing, named in the
# message. Never for a failure.
skip() {
  echo "SKIPPED: $*" >&2
  exit 77
}

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

# wait_logged FILE ERE SECONDS [MARK]: waits for a line of FILE (a
# runtime's stderr) matching ERE, after its first MARK lines (default 0:
# anywhere); `log_mark FILE` takes a mark. For waiting only: what a test
# asserts, it asserts in the database.
log_mark() { wc -l <"$1"; }
wait_logged() {
  local deadline=$((SECONDS + $3)) from=$((${4:-0} + 1))
  until tail -n +"$from" "$1" | grep -Eq -- "$2"; do
    [ $SECONDS -lt $deadline ] || fail "nothing matching '$2' in ${1##*/} within $3 s; it ends: $(tail -n 5 "$1")"
    sleep 0.1
  done
}

# Starts `moontask ARGS` in the background (the binary itself, so that
# signals reach it); its PID is in $MT_PID and its stderr in the file
# $MT_LOG. The exit trap kills it if it is still running.
mt_start() {
  MT_LOG=$E2E_TMP/runtime-$((${#E2E_PIDS[@]} + 1)).log
  "$MOONTASK_BIN" --config "${MT_CONFIG:-tests/e2e/config.lua}" --database-url "$DATABASE_URL" "$@" 2>"$MT_LOG" &
  MT_PID=$!
  E2E_PIDS+=("$MT_PID")
  E2E_LOGS+=("$MT_LOG")
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
