# Recurring schedules added, redefined and removed through SQL inside a
# transaction that rolls back leave no trace: no row, and no task from a
# running runtime.
source "$(dirname "$0")/lib.sh"
reset_db
sql "BEGIN;
     SELECT moontask.schedule_recurring('rb.gone', 'e2e.insert', '{\"n\": 1}', '*/2 * * * * *');
     ROLLBACK;" >/dev/null
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.schedules")" "schedules after a rolled-back add"

sql "SELECT moontask.schedule_recurring('rb.kept', 'e2e.insert', '{}', '0 9 * * MON', 'Europe/Oslo')" >/dev/null
sql "BEGIN;
     SELECT moontask.unschedule_recurring('rb.kept');
     ROLLBACK;" >/dev/null
sql "BEGIN;
     SELECT moontask.schedule_recurring('rb.kept', 'e2e.insert', '{\"n\": 2}', '*/2 * * * * *');
     ROLLBACK;" >/dev/null
assert_eq "rb.kept|0 9 * * MON|Europe/Oslo|{}" \
  "$(sql "SELECT name, expression, tz, payload FROM moontask.schedules")" \
  "schedule after a rolled-back remove and redefinition"

# A runtime sees only the committed, weekly schedule: it computes its next
# fire and creates no task in 3 seconds, where the rolled-back definitions
# would have fired every 2 seconds.
mt_start run
pid=$MT_PID
wait_for "SELECT next_fire_at IS NOT NULL FROM moontask.schedules WHERE name = 'rb.kept'" 10
sleep 3
kill -TERM $pid
wait $pid
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.tasks")" "tasks from rolled-back schedules"
assert_eq "1 09:00" "$(sql "SELECT to_char(next_fire_at AT TIME ZONE 'Europe/Oslo', 'ID HH24:MI') FROM moontask.schedules")" \
  "next fire: Monday 09:00 Oslo time"

# Committed removal works and reports whether there was a schedule.
assert_eq t "$(sql "SELECT moontask.unschedule_recurring('rb.kept')")" "remove an existing schedule"
assert_eq f "$(sql "SELECT moontask.unschedule_recurring('rb.kept')")" "remove it again"

# Bad input raises 22023 and writes nothing.
for call in "'x', 'not a name!', '{}', '* * * * *'" "'x', 'e2e.insert', '[]', '* * * * *'" \
            "'', 'e2e.insert', '{}', '* * * * *'" "'x', 'e2e.insert', '{}', ''"; do
  out=$(psql -X -q -At -d "$DATABASE_URL" -v ON_ERROR_STOP=1 -v VERBOSITY=verbose \
        -c "SELECT moontask.schedule_recurring($call)" 2>&1) && fail "accepted: $call"
  assert_contains "$out" "22023" "SQLSTATE for $call"
done
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.schedules")" "schedules after bad input"

# The CLI refuses what the runtime could never fire, naming the problem.
expect_exit 2 mt recurring add bad e2e.insert '{}' '0 9 * * FOO'
assert_contains "$ERR" "day-of-week" "bad expression"
expect_exit 2 mt recurring add bad e2e.insert '{}' '0 9 * * *' --tz Mars/Base
assert_contains "$ERR" "Mars/Base" "bad zone"
expect_exit 2 mt recurring add bad e2e.nope '{}' '0 9 * * *'
assert_contains "$ERR" "e2e.nope" "unknown task"
expect_exit 2 mt recurring remove bad
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.schedules")" "schedules after refused CLI input"
mt recurring add cli.one e2e.insert '{"n": 3}' '0 9 * * MON' --tz Europe/Oslo --catch-up all >/dev/null
assert_eq "all" "$(sql "SELECT catch_up FROM moontask.schedules WHERE name = 'cli.one'")" "catch-up from the CLI"
assert_contains "$(mt recurring list)" "cli.one" "recurring list"
assert_contains "$(mt recurring list --json)" '"name":"cli.one"' "recurring list --json"
mt recurring remove cli.one >/dev/null
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.schedules")" "schedules after CLI remove"
