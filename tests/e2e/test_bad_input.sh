# Bad input on every entry point: exit 2 with a message naming the problem,
# and nothing written.
source "$(dirname "$0")/lib.sh"
reset_db
expect_exit 2 mt schedule no.such_task '{}'
assert_contains "$ERR" 'unknown task "no.such_task"' "unknown task"
expect_exit 2 mt schedule e2e.insert '{"n": 1,}'
assert_contains "$ERR" "invalid JSON at byte" "malformed JSON"
expect_exit 2 mt schedule e2e.insert '[1, 2]'
assert_contains "$ERR" "must be a JSON object" "non-object payload"
expect_exit 2 mt schedule e2e.insert '{}' --at 'next tuesday-ish'
assert_contains "$ERR" "next tuesday-ish" "bad --at"
expect_exit 2 mt schedule e2e.insert '{}' --in soon
assert_contains "$ERR" '"soon" is not a duration' "bad --in"
expect_exit 2 mt schedule e2e.insert
expect_exit 2 mt frobnicate
expect_exit 2 mt run --workers zero
expect_exit 2 mt list --state finished
expect_exit 2 mt show 999999999
assert_contains "$ERR" "not found" "show missing"
expect_exit 2 mt cancel abc
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.tasks")" "tasks written by bad CLI input"

# SQL entry point: refused inside the caller's transaction.
expect_exit 1 psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -c "SELECT moontask.schedule('e2e.insert', '[1]')"
assert_contains "$ERR" "payload must be a JSON object" "SQL non-object"
expect_exit 1 psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -c "SELECT moontask.schedule('bad name!', '{}')"
assert_contains "$ERR" "invalid task name" "SQL bad name"
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.tasks")" "tasks written by bad SQL input"

# An unknown name that reached the table through SQL is left for a runtime
# that knows it (as during a deploy); --drain does not wait for it.
id=$(sql "SELECT moontask.schedule('e2e.missing', '{}')")
mt run --drain 2>>"$RUNTIME_LOG"
assert_eq "scheduled|0" "$(sql "SELECT state, attempts FROM moontask.tasks WHERE id = $id")" "unknown task via SQL"

# Broken task files and configuration are refused with file and line.
tmp=$E2E_TMP
mkdir -p "$tmp/tasks/broken"
printf 'return {\n  handler = function(tx, payload ctx) end,\n}\n' > "$tmp/tasks/broken/syntax.lua"
expect_exit 2 mt --tasks "$tmp/tasks" run --drain
assert_contains "$ERR" "syntax.lua:2:" "syntax error location"
expect_exit 2 mt --tasks "$tmp/tasks" check
rm "$tmp/tasks/broken/syntax.lua"
printf 'return { max_attempts = 3 }\n' > "$tmp/tasks/broken/nohandler.lua"
expect_exit 2 mt --tasks "$tmp/tasks" check
assert_contains "$ERR" "nohandler.lua: handler must be a function" "missing handler"
printf 'return { workers = "many" }\n' > "$tmp/config.lua"
expect_exit 2 "$MOONTASK_BIN" --config "$tmp/config.lua" --database-url "$DATABASE_URL" list
assert_contains "$ERR" "workers must be a whole number" "bad config"
expect_exit 2 "$MOONTASK_BIN" --config "$tmp/nope.lua" list

# A malformed schema is refused when tasks load, naming its file and path.
mkdir -p "$tmp/schemas/broken"
printf 'return { handler = function() end, schema = "broken.order" }\n' > "$tmp/tasks/broken/nohandler.lua"
printf 'return { type = "object", properties = { qty = { type = "integr" } } }\n' > "$tmp/schemas/broken/order.lua"
expect_exit 2 mt --tasks "$tmp/tasks" --schemas "$tmp/schemas" check
assert_contains "$ERR" "schemas/broken/order.lua" "schema file named"
assert_contains "$ERR" '/properties/qty/type: unknown type "integr"' "schema path and reason"
printf 'return { type = "object", required = "qty" }\n' > "$tmp/schemas/broken/order.lua"
expect_exit 2 mt --tasks "$tmp/tasks" --schemas "$tmp/schemas" run --drain
assert_contains "$ERR" "required" "required not a list"

# What an error quotes back reaches the terminal with its control
# characters escaped.
expect_exit 2 mt schedule "$(printf 'evil\x1b]0;owned\x07')" '{}'
assert_contains "$ERR" 'unknown task "evil\x1b]0;owned\x07"' "escaped task name"
[[ "$ERR" != *$'\x1b'* ]] || fail "a raw ESC reached stderr"
