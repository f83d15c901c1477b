# The queues from the command line: `moontask queues` shows each queue's
# limits as a runtime wrote them from config.lua and its tasks' counts;
# `schedule --priority/--queue/--replace` store what they say; bad values
# exit 2 naming the flag, and a queue config.lua does not declare is
# refused by name, with nothing written.
source "$(dirname "$0")/lib.sh"
reset_db
on_exit reset_db
cfg=$E2E_TMP/config.lua
e2e_config "$cfg" '  queues = {
    payments = { concurrency = 2, rate = "25/s" },
    bulk = { concurrency = 4 },
    reports = {},
  },'
mq() { "$MOONTASK_BIN" --config "$cfg" --database-url "$DATABASE_URL" "$@"; }
count() { sql "SELECT count(*) FROM moontask.tasks"; }

# A runtime writes config.lua's queues into the database as it starts;
# with nothing due, --drain exits at once.
mq migrate >/dev/null
mq run --drain 2>>"$RUNTIME_LOG"
assert_eq "bulk|4||,payments|2|25|1,reports|||" \
  "$(sql "SELECT string_agg(format('%s|%s|%s|%s', name, concurrency, rate_limit, rate_period), ',' ORDER BY name) FROM moontask.queues")" \
  "moontask.queues after a start"

# --- queue and priority: stored as given, else 'default' and 0 ----------
id=$(mq schedule e2e.insert '{"n": 1}')
assert_eq "default|0" "$(sql "SELECT queue || '|' || priority FROM moontask.tasks WHERE id = $id")" "no flags"
id=$(mq schedule e2e.insert '{"n": 1}' --queue bulk --priority -7)
assert_eq "bulk|-7" "$(sql "SELECT queue || '|' || priority FROM moontask.tasks WHERE id = $id")" "--queue bulk --priority -7"
id=$(mq schedule e2e.insert '{"n": 1}' --queue=payments --priority=32767)
assert_eq "payments|32767" "$(sql "SELECT queue || '|' || priority FROM moontask.tasks WHERE id = $id")" "--queue=payments --priority=32767"
id=$(mq schedule e2e.insert '{"n": 1}' --queue default --priority -32768)
assert_eq "default|-32768" "$(sql "SELECT queue || '|' || priority FROM moontask.tasks WHERE id = $id")" "--queue default"
# show and list --json carry them.
assert_eq "queue default,priority -32768" \
  "$(mq show "$id" | awk '$1 == "queue" || $1 == "priority" { printf "%s%s %s", sep, $1, $2; sep = "," }')" "show"
assert_eq "-32768 default" \
  "$(mq list --json --limit 1 | python3 -c 'import json, sys; t = json.load(sys.stdin)[0]; print(t["priority"], t["queue"])')" \
  "list --json"

# --- moontask queues: limits, and counts by state ------------------------
reset_db
mq run --drain 2>>"$RUNTIME_LOG"
for i in 1 2 3; do mq schedule e2e.insert '{}' --queue payments >/dev/null; done
mq schedule e2e.insert '{}' --queue payments --in 1h >/dev/null
for i in 1 2 3; do mq schedule e2e.insert '{}' --queue bulk >/dev/null; done
mq schedule e2e.insert '{}' >/dev/null
mq schedule e2e.insert '{}' --in 2h >/dev/null
mq schedule e2e.insert '{}' --in 2h >/dev/null
# One of bulk's as if a runtime held it (no runtime runs here: the due
# ones must stay due).
sql "UPDATE moontask.tasks SET state = 'running', locked_by = 'e2e', locked_until = now() + interval '1 hour',
            started_at = now(), attempts = 1
      WHERE id = (SELECT min(id) FROM moontask.tasks WHERE queue = 'bulk')" >/dev/null
table=$(mq queues)
assert_eq "QUEUE CONCURRENCY RATE RUNNING DUE LATER
default - - 0 1 2
bulk 4 - 1 2 0
payments 2 25/s 0 3 1
reports - - 0 0 0" "$(awk '{ $1 = $1; print }' <<<"$table")" "moontask queues"
assert_eq '[{"name":"default","concurrency":null,"rate":null,"running":0,"due":1,"later":2},{"name":"bulk","concurrency":4,"rate":null,"running":1,"due":2,"later":0},{"name":"payments","concurrency":2,"rate":"25/s","running":0,"due":3,"later":1},{"name":"reports","concurrency":null,"rate":null,"running":0,"due":0,"later":0}]' \
  "$(mq queues --json | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin), separators=(",", ":")))')" \
  "moontask queues --json"
# A queue that lost its row while its tasks waited (dropped from
# config.lua and cleared by hand) is listed without limits.
sql "UPDATE moontask.tasks SET queue = 'gone' WHERE queue = 'payments' AND run_at > now()" >/dev/null
assert_contains "$(mq queues | awk '{ $1 = $1; print }')" "gone - - 0 0 1" "a queue without a row"

# --- --replace: a debounce; without it the waiting task is kept ---------
reset_db
mq run --drain 2>>"$RUNTIME_LOG"
first=$(mq schedule e2e.insert '{"n": 1}' --key keep --in 1h)
again=$(mq schedule e2e.insert '{"n": 2}' --key keep --in 1h --priority 9)
assert_eq "$first" "$again" "a second schedule of a held key"
assert_eq '1|0' "$(sql "SELECT (payload->>'n') || '|' || priority FROM moontask.tasks WHERE key = 'keep'")" "without --replace"
ids=$E2E_TMP/ids
for i in $(seq 1 100); do
  mq schedule e2e.insert "{\"n\": $i}" --key debounce --in "${i}m" --priority "$i" --replace >>"$ids"
done
assert_eq 1 "$(sort -u "$ids" | wc -l)" "ids printed by 100 replaces"
assert_eq "1|scheduled|100|100|default" \
  "$(sql "SELECT count(*) || '|' || min(state) || '|' || min(payload->>'n') || '|' || min(priority) || '|' || min(queue)
            FROM moontask.tasks WHERE key = 'debounce'")" \
  "after 100 replaces"
# The last one's run time too: 100 minutes from now, give or take the run.
assert_eq t "$(sql "SELECT run_at BETWEEN now() + interval '99 minutes' AND now() + interval '101 minutes' FROM moontask.tasks WHERE key = 'debounce'")" \
  "run_at after 100 replaces"
# A replace may move the task to another queue.
id=$(mq schedule e2e.insert '{"n": 101}' --key debounce --queue bulk --replace)
assert_eq "$(head -n 1 "$ids")" "$id" "replace into another queue"
assert_eq "bulk|101|0" "$(sql "SELECT queue || '|' || (payload->>'n') || '|' || priority FROM moontask.tasks WHERE key = 'debounce'")" \
  "replace into another queue"

# --- bad input: exit 2, the flag named, nothing written -----------------
before=$(count)
expect_exit 2 mq schedule e2e.insert '{}' --replace
assert_contains "$ERR" "replace needs a key" "--replace without --key"
for bad in abc 1.5 32768 -32769 '' ' 5' +5 99999999999999999999 0x10; do
  expect_exit 2 mq schedule e2e.insert '{}' --priority "$bad"
  assert_contains "$ERR" "--priority must be a whole number from -32768 to 32767" "--priority '$bad'"
  assert_contains "$ERR" "not \"$bad\"" "--priority '$bad' quoted"
done
expect_exit 2 mq schedule e2e.insert '{}' --priority
assert_contains "$ERR" "--priority needs a value" "--priority without a value"
for bad in 'pay ments' 2fast a.b ''; do
  expect_exit 2 mq schedule e2e.insert '{}' --queue "$bad"
  assert_contains "$ERR" "invalid queue name \"$bad\"" "--queue '$bad'"
done
expect_exit 2 mq schedule e2e.insert '{}' --queue nowhere
assert_contains "$ERR" "unknown queue 'nowhere'" "an undeclared queue"
expect_exit 2 mq schedule e2e.insert '{}' --queue nowhere --key k --replace
assert_contains "$ERR" "nowhere" "an undeclared queue, replacing"
assert_eq "$before" "$(count)" "tasks written by bad input"
assert_eq "bulk|101" "$(sql "SELECT queue || '|' || (payload->>'n') FROM moontask.tasks WHERE key = 'debounce'")" \
  "the waiting task after refused replaces"
expect_exit 2 mq queues --all
assert_contains "$ERR" 'queues: unexpected argument "--all"' "queues --all"
