# A runtime stopped with SIGSTOP past its lease, holding tasks mid-handler
# (their rows written, uncommitted) and tasks claimed but not started.
# Another runtime takes them over once the lease lapses and completes
# them. Then the first one resumes with SIGCONT and carries on with what it
# held, late: none of its commits may land (moontask.complete refuses a
# runtime that lost the lease, and its transaction rolls back), so each
# task keeps the one row of the runtime that took it over. Both runtimes
# then go on working side by side.
source "$(dirname "$0")/lib.sh"
mtf migrate >/dev/null
reset_db
# Eight tasks of 3 s: four in the handlers, four claimed ahead; 3 s is the
# margin for stopping it before its first commits.
held=8
schedule_inserts "$held" 3
mt_start run --workers 4
late=$MT_PID late_log=$MT_LOG
# All of them claimed by the first runtime, four in their handlers, each
# sitting in pg_sleep with its row written.
wait_for "SELECT count(*) = $held FROM moontask.tasks WHERE state = 'running'" 30
wait_for "SELECT count(*) = 4 FROM pg_stat_activity
           WHERE application_name LIKE 'moontask worker%' AND state = 'active' AND query LIKE 'SELECT pg_sleep%'" 30
owner=$(sql "SELECT DISTINCT locked_by FROM moontask.tasks WHERE state = 'running'")
kill -STOP "$late"
on_exit "kill -CONT $late 2>/dev/null"
echo "stopped runtime $owner holding $held tasks"

mt_start run --workers 4
other=$MT_PID
# The stopped runtime's lease lapses after 3 s; the other takes its tasks
# and completes them (attempt 2) while it is still stopped.
assert_leases_returned "$late" 30
wait_for "SELECT count(*) = $held FROM moontask.tasks WHERE state = 'completed'" 60
assert_eq "$held" "$(sql "SELECT count(*) FROM e2e_rows WHERE n = 2")" "rows of the runtime that took over"

kill -CONT "$late"
# Resumed, it ends the handlers it was in and runs the tasks it had
# claimed: every commit refused. Its attempts are not recorded (the tasks
# are no longer its own), and it says why each failed.
deadline=$((SECONDS + 60))
while [ "$(grep -c "no longer held by this runtime" "$late_log")" -lt "$held" ]; do
  [ $SECONDS -lt $deadline ] ||
    fail "the resumed runtime reported $(grep -c "no longer held by this runtime" "$late_log") refused commits of $held"
  sleep 0.2
done
alive "$late" || fail "the resumed runtime exited"
assert_eq "$held" "$(sql "SELECT count(*) FROM e2e_rows")" "rows after the late runtime's commits"
assert_eq "$held" "$(count_where "state = 'completed' AND attempts = 2")" "tasks completed by their second attempt"

# Both run new work: the late one is a runtime like any other again.
schedule_inserts 200 0.02
assert_exactly_once $((held + 200)) 60
assert_eq 2 "$(sql "SELECT count(*) FROM pg_stat_activity
                    WHERE application_name = 'moontask discovery'")" "runtimes connected"
stop_runtime "$late"
stop_runtime "$other"
