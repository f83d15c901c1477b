# tx:cancel, tx:cancel_key, tx:reschedule, tx:get, tx:find and tx:schedule's
# priority, queue and replace, from a handler (tasks/e2e/surface.lua checks
# what they return); here, what they did to the tasks, and that they roll
# back with a failed handler.
source "$(dirname "$0")/lib.sh"
reset_db
later="now() + interval '1 hour'"
a=$(sql "SELECT moontask.schedule('e2e.insert', '{\"n\": 1}', $later)")
b=$(sql "SELECT moontask.schedule('e2e.insert', '{\"n\": 2}', $later, 'surface-k')")
c=$(sql "SELECT moontask.schedule('e2e.insert', '{\"n\": 3}', $later)")
d=$(sql "SELECT moontask.schedule('e2e.order', '{\"email\": \"a@b.c\", \"lines\": [{\"sku\": \"ABC-0001\", \"qty\": 1}]}', $later)")
e=$(sql "SELECT moontask.schedule('e2e.insert', '{\"n\": 4}', $later)")
missing=$((d + 1000))
s=$(mt schedule e2e.surface "{\"a\": $a, \"b\": $b, \"c\": $c, \"d\": $d, \"missing\": $missing}")
f=$(mt schedule e2e.surface "{\"fail\": true, \"a\": $e}")
mt run --drain 2>>"$RUNTIME_LOG"

assert_eq "completed|" "$(sql "SELECT state, coalesce(last_error, '') FROM moontask.tasks WHERE id = $s")" "the handler's checks"
assert_eq cancelled "$(sql "SELECT state FROM moontask.tasks WHERE id = $a")" "cancelled by id"
assert_eq cancelled "$(sql "SELECT state FROM moontask.tasks WHERE id = $b")" "cancelled by key"
assert_eq "completed|33" "$(sql "SELECT state, payload->>'n' FROM moontask.tasks WHERE id = $c")" "rescheduled to now with a new payload"
assert_eq "scheduled|2030-01-02 03:04:05+00|a@b.c" \
  "$(sql "SET TIME ZONE 'UTC'; SELECT state, run_at, payload->>'email' FROM moontask.tasks WHERE id = $d")" \
  "moved, and its payload kept when the new one broke its schema"
assert_eq "completed|-3|6" "$(sql "SELECT state, priority, payload->>'n' FROM moontask.tasks WHERE key = 'surface-r'")" \
  "scheduled with a priority, then replaced"
assert_eq 1 "$(sql "SELECT count(*) FROM moontask.tasks WHERE key = 'surface-r'")" "replace kept one task"
assert_eq "0,6,33" "$(sql "SELECT string_agg(n::text, ',' ORDER BY n) FROM e2e_rows")" "rows"
# The failed handler's cancel rolled back with it.
assert_eq failed "$(sql "SELECT state FROM moontask.tasks WHERE id = $f")" "the failing handler"
assert_eq scheduled "$(sql "SELECT state FROM moontask.tasks WHERE id = $e")" "a cancel rolled back"
