# A payload travels jsonb -> Lua -> tx:schedule -> jsonb without loss: big
# integers, [] and {}, nested empties, null, non-ASCII text.
source "$(dirname "$0")/lib.sh"
reset_db
payload='{"max": 9223372036854775807, "odd": 9007199254740993, "neg": -9223372036854775808, "arr": [], "obj": {}, "nested": {"a": [[], {}], "n": null}, "list": [1, null, 2.5, true], "text": "blåbær — 日本 🎉 \"q\""}'
mt schedule e2e.forward "{\"task\": \"e2e.sink\", \"payload\": $payload}" >/dev/null
mt run --drain 2>>"$RUNTIME_LOG"
assert_eq t "$(sql "SELECT payload = '$payload'::jsonb FROM moontask.tasks WHERE name = 'e2e.sink'")" "payload equal as jsonb"
assert_eq completed "$(sql "SELECT state FROM moontask.tasks WHERE name = 'e2e.sink'")" "sink ran"
