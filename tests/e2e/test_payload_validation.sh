# Payloads are validated against the task's schema at every entry point of
# the TaskService; every violation is named by its JSON Pointer.
source "$(dirname "$0")/lib.sh"
reset_db
good='{"email": "ada@example.org", "lines": [{"sku": "ABC-1234", "qty": 2}], "note": null}'
bad='{"email": "not-an-email", "lines": [{"sku": "ABC-1234", "qty": 2}, {"sku": "abc-12", "qty": 0}], "note": 5}'

# validate: a dry run
assert_eq valid "$(mt validate e2e.order "$good")" "valid payload"
expect_exit 2 mt validate e2e.order "$bad"
assert_contains "$ERR" '/email: is not a valid "email"' "format"
assert_contains "$ERR" '/lines/1/sku: does not match pattern ^[A-Z]{3}-[0-9]{4}$' "pattern in a \$ref-ed item"
assert_contains "$ERR" '/lines/1/qty' "minimum"
assert_contains "$ERR" '/note' "oneOf with null"
expect_exit 2 mt validate e2e.order '{"email": "ada@example.org", "lines": {}}'
assert_contains "$ERR" '/lines: is not of type "array"' "{} is not []"

# schedule: refused, nothing written
expect_exit 2 mt schedule e2e.order "$bad"
assert_contains "$ERR" '/lines/1/sku' "CLI names the pointer"
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.tasks")" "tasks after refused schedule"

# SQL cannot see schemas: the runtime fails the task at once, unrun.
id=$(sql "SELECT moontask.schedule('e2e.order', '$bad')")
ok=$(sql "SELECT moontask.schedule('e2e.order', '$good')")
mt run --drain 2>>"$RUNTIME_LOG"
assert_eq "failed|1" "$(sql "SELECT state, attempts FROM moontask.tasks WHERE id = $id")" "invalid SQL payload"
assert_contains "$(sql "SELECT last_error FROM moontask.tasks WHERE id = $id")" '/lines/1/sku: does not match pattern' "its errors"
assert_eq completed "$(sql "SELECT state FROM moontask.tasks WHERE id = $ok")" "valid SQL payload"
assert_eq "$ok" "$(sql "SELECT string_agg(task_id::text, ',') FROM e2e_rows")" "only the valid one ran"

# tx:schedule raises an error the handler can catch; nothing is scheduled.
reset_db
fwd=$(mt schedule e2e.forward "{\"task\": \"e2e.order\", \"payload\": $bad}")
mt run --drain 2>>"$RUNTIME_LOG"
assert_eq completed "$(sql "SELECT state FROM moontask.tasks WHERE id = $fwd")" "forwarding task"
assert_eq -1 "$(sql "SELECT n FROM e2e_rows WHERE task_id = $fwd")" "caught validation error"
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.tasks WHERE name = 'e2e.order'")" "invalid follow-up"
