# Retention: finished tasks older than their state's period go, the rest
# stay: younger finished tasks, and scheduled and running tasks however old
# their timestamps. Once through `moontask prune` (with --dry-run first,
# and more old rows than one batch holds), once through a running
# runtime's own periodic prune, which also stops at once on SIGTERM.
source "$(dirname "$0")/lib.sh"

cfg=$E2E_TMP/config.lua
cat >"$cfg" <<'EOF'
return {
  tasks_dir = "tests/e2e/tasks",
  schemas_dir = "tests/e2e/schemas",
  workers = 2,
  poll_interval = 0.2,
  lease_timeout = 3,
  shutdown_grace = 5,
  -- each form config.lua takes: text, seconds
  retention = { completed = "1h", failed = "2h", cancelled = 600, interval = 1 },
}
EOF
mtc() { "$MOONTASK_BIN" --config "$cfg" --database-url "$DATABASE_URL" "$@"; }

# Ages the finished task $1 to have finished $2 ago (an interval).
age() { sql "UPDATE moontask.tasks SET finished_at = now() - interval '$2' WHERE id = $1" >/dev/null; }

# The rows, finished through the runtime as in life and then aged: each
# state just past its period and just inside it (the failed one inside is
# older than the completed period: each state has its own). The scheduled
# and running rows carry a finish time far in the past (a retried task,
# an operator's UPDATE): their state alone keeps them.
setup() {
  reset_db
  done_old=$(mt schedule e2e.noop '{}')
  done_new=$(mt schedule e2e.noop '{}')
  fail_old=$(mt schedule e2e.fail '{}')
  fail_new=$(mt schedule e2e.fail '{}')
  cancel_old=$(mt schedule e2e.noop '{}' --in 1h)
  cancel_new=$(mt schedule e2e.noop '{}' --in 1h)
  mt cancel "$cancel_old" >/dev/null
  mt cancel "$cancel_new" >/dev/null
  mt run --drain 2>>"$RUNTIME_LOG"
  assert_eq "2 2 2" "$(sql "SELECT count(*) FILTER (WHERE state = 'completed') || ' ' ||
                                    count(*) FILTER (WHERE state = 'failed') || ' ' ||
                                    count(*) FILTER (WHERE state = 'cancelled')
                               FROM moontask.tasks")" "finished tasks to age"
  age "$done_old" "1 hour 1 minute"
  age "$done_new" "59 minutes"
  age "$fail_old" "2 hours 1 minute"
  age "$fail_new" "1 hour 30 minutes"
  age "$cancel_old" "11 minutes"
  age "$cancel_new" "9 minutes"
  live_sched=$(sql "INSERT INTO moontask.tasks (name, run_at, finished_at)
                    VALUES ('e2e.noop', now() + interval '1 day', now() - interval '1 year')
                    RETURNING id")
  live_run=$(sql "INSERT INTO moontask.tasks (name, state, attempts, locked_by,
                                               locked_until, finished_at)
                  VALUES ('e2e.noop', 'running', 1, 'elsewhere:1:0000',
                          now() + interval '1 day', now() - interval '1 year')
                  RETURNING id")
  keep="$done_new,$fail_new,$cancel_new,$live_sched,$live_run"
}

# What is left: the ids, in order.
left() { sql "SELECT string_agg(id::text, ',' ORDER BY id) FROM moontask.tasks"; }
sorted() { tr ',' '\n' <<<"$1" | sort -n | paste -sd, -; }

# --- moontask prune ----------------------------------------------------------
setup
# Past one batch (500 rows): old completed rows made in SQL.
sql "INSERT INTO moontask.tasks (name, state, finished_at)
     SELECT 'e2e.noop', 'completed', now() - interval '2 hours'
       FROM generate_series(1, 1200)" >/dev/null
before=$(sql "SELECT count(*) FROM moontask.tasks")

out=$(mtc prune --dry-run)
assert_eq 1201 "$(awk '$1 == "completed" { print $2 }' <<<"$out")" "dry run: completed"
assert_eq 1 "$(awk '$1 == "failed" { print $2 }' <<<"$out")" "dry run: failed"
assert_eq 1 "$(awk '$1 == "cancelled" { print $2 }' <<<"$out")" "dry run: cancelled"
assert_eq "$before" "$(sql "SELECT count(*) FROM moontask.tasks")" "a dry run deletes nothing"

out=$(mtc prune)
assert_eq 1201 "$(awk '$1 == "completed" { print $2 }' <<<"$out")" "pruned completed"
assert_eq 1 "$(awk '$1 == "failed" { print $2 }' <<<"$out")" "pruned failed"
assert_eq 1 "$(awk '$1 == "cancelled" { print $2 }' <<<"$out")" "pruned cancelled"
assert_contains "$out" "completed 1201 deleted (older than 1h)" "the period in the output"
assert_eq "$(sorted "$keep")" "$(left)" "rows past their period went, the others stayed"

out=$(mtc prune)
assert_eq "0 0 0" "$(awk '{ printf "%s%s", sep, $2; sep = " " }' <<<"$out")" "a second prune finds nothing"

# false keeps a state for ever, whatever its age.
age "$fail_new" "10 years"
sed -i 's/failed = "2h"/failed = false/' "$cfg"
out=$(mtc prune)
assert_contains "$out" "failed    0 (kept for ever" "failed kept"
assert_eq "$(sorted "$keep")" "$(left)" "failed kept for ever"
sed -i 's/failed = false/failed = "2h"/' "$cfg"

# --- a runtime's periodic prune ----------------------------------------------
setup
MT_CONFIG=$cfg mt_start run
wait_for "SELECT count(*) = 5 FROM moontask.tasks" 20
assert_eq "$(sorted "$keep")" "$(left)" "the runtime pruned what was past its period"
# It prunes again and again: a task aged now goes at a later prune.
age "$done_new" "2 hours"
wait_for "SELECT NOT EXISTS (SELECT FROM moontask.tasks WHERE id = $done_new)" 20
assert_eq "$(sorted "$fail_new,$cancel_new,$live_sched,$live_run")" "$(left)" "later prunes"
assert_eq 1 "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'moontask retention'")" \
  "one pruning connection"

# SIGTERM with nothing in flight: the pruner's wait ends with the runtime.
start=$(date +%s%N)
kill -TERM "$MT_PID"
rc=0
wait "$MT_PID" || rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
assert_eq 0 "$rc" "exit code after SIGTERM"
[ "$ms" -lt 3000 ] || fail "the runtime took $ms ms to stop"
assert_eq 0 "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'moontask retention'")" \
  "the pruning connection closed"
