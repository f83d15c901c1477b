# return ctx.snooze(s): the task goes back to `scheduled` for s seconds with
# its transaction's effects committed once, its attempt not counted, and
# runs again no sooner than s seconds later. Also when the handler ran no
# SQL (the snooze begins the transaction itself). Bad seconds raise.
source "$(dirname "$0")/lib.sh"
reset_db
id=$(mt schedule e2e.snooze '{"seconds": 1}')
until=$(($(date +%s) + 2))
quiet=$(mt schedule e2e.snooze "{\"quiet\": true, \"seconds\": 0.3, \"until\": $until}")
mt_start run
wait_for "SELECT count(*) = 2 FROM moontask.tasks WHERE state = 'completed'" 30
kill -TERM "$MT_PID"
wait "$MT_PID"

assert_eq "completed|1" "$(sql "SELECT state, attempts FROM moontask.tasks WHERE id = $id")" "snoozed task"
# The snoozed run's row committed, once, and both runs were attempt 1.
assert_eq "1,101" "$(sql "SELECT string_agg(n::text, ',' ORDER BY n) FROM e2e_rows WHERE task_id = $id")" \
  "rows of the snoozed task (n: attempt, +100 on the second run)"
# The first row's time is its transaction's start, which the snooze counts
# from: the second run starts a full second later.
assert_eq t "$(sql "SELECT max(at) - min(at) >= interval '1 second' FROM e2e_rows WHERE task_id = $id")" \
  "the second run waited out the snooze"
assert_eq "completed|1|1" "$(sql "SELECT t.state, t.attempts, count(r.*) FROM moontask.tasks t
  JOIN e2e_rows r ON r.task_id = t.id WHERE t.id = $quiet GROUP BY t.state, t.attempts")" \
  "a task snoozed without SQL"
assert_eq t "$(sql "SELECT min(at) >= to_timestamp($until) FROM e2e_rows WHERE task_id = $quiet")" \
  "the quiet task ran after its time"

# Seconds out of range, not numbers: the handler raises, as `try` shows.
for bad in 0 -1 2592001 '"5"' '"inf"' '"nan"' null; do
  out=$(mt try e2e.snooze "{\"seconds\": $bad}" --json || true)
  assert_contains "$out" "seconds must be" "ctx.snooze($bad)"
done
out=$(mt try e2e.snooze '{"seconds": 2592000}' --json)
assert_contains "$out" '"ok":true,"error":null,"snooze":2592000,' "ctx.snooze(30 days), as try reports it"
