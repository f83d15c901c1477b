# Input past a limit, as a user hits it: a delay or a rate() interval over
# 100 years, `cron next` at the end of time, JSON nested past 1000 levels.
# Each is refused with exit 2 and one message naming the field and the
# limit, and nothing is written. And text from the database (a handler's
# error, a key, a payload) reaches the terminal only escaped.
source "$(dirname "$0")/lib.sh"
reset_db
tasks() { sql "SELECT count(*) FROM moontask.tasks"; }
no_stdout() { # what; the rest is the command, which must print nothing
  local what=$1 out
  shift
  out=$("$@" 2>/dev/null) || true
  assert_eq "" "$out" "$what: nothing on stdout"
}

# ---- 1. --in: at most MT_SCHEDULER_MAX_DELAY, 100 years -------------------
for d in 99999999999999999999d 25000000000h 36525d 1e308d 36524d1d; do
  expect_exit 2 mt schedule e2e.insert '{}' --in "$d"
  assert_eq "moontask: --in: \"$d\" is longer than the limit of 100 years (3155695200 seconds)" \
    "$ERR" "--in $d"
  no_stdout "--in $d" mt schedule e2e.insert '{}' --in "$d"
done
expect_exit 2 mt schedule e2e.insert '{}' --in infd
assert_contains "$ERR" '"infd" is not a duration' "--in infd"
assert_eq 0 "$(tasks)" "tasks written by a too-long --in"
# The limit itself is a delay like any other.
id=$(mt schedule e2e.insert '{}' --in 36524d)
assert_eq t "$(sql "SELECT run_at BETWEEN now() + interval '36523 days'
                                      AND now() + interval '36525 days'
                      FROM moontask.tasks WHERE id = $id")" "run_at of --in 36524d"
reset_db

# ---- 2. cron next and rate(): no half answers ------------------------------
expr='rate(99999999999999999999 days)'
expect_exit 2 mt cron next "$expr"
assert_eq 'moontask: rate: "99999999999999999999" is out of range 1-36524 for days (at most 100 years between fires)' \
  "$ERR" "huge rate"
no_stdout "huge rate" mt cron next "$expr"
expect_exit 2 mt cron next 'rate(876583 hours)'
assert_contains "$ERR" 'out of range 1-876582 for hours' "rate in hours"
expect_exit 2 mt cron next 'rate(52594921 minutes)'
assert_contains "$ERR" 'out of range 1-52594920 for minutes' "rate in minutes"
expect_exit 2 mt cron next '* * * * *' --count 99999999999999999999
assert_contains "$ERR" '--count: "99999999999999999999" is not a number from 1 to 100000' "huge --count"
# The next fire past year 9999 cannot be written: with none found that is
# an error and nothing else ...
expect_exit 2 mt cron next 'rate(36524 days)' --after 9950-01-01T00:00:00Z
assert_contains "$ERR" "next fire would be after 9999-12-31T23:59:59" "rate past 9999"
no_stdout "rate past 9999" mt cron next 'rate(36524 days)' --after 9950-01-01T00:00:00Z
# ... also where the wall clock runs ahead of UTC ...
expect_exit 2 mt cron next 'rate(1 hour)' --tz Asia/Tokyo --after 9999-12-31T15:30:00Z
no_stdout "rate past 9999 in Tokyo" mt cron next 'rate(1 hour)' --tz Asia/Tokyo --after 9999-12-31T15:30:00Z
# ... and after some fires it is the schedule's end, exit 0.
out=$(mt cron next 'rate(36524 days)' --after 9800-01-01T00:00:00Z --count 100000)
assert_eq "9900-01-01T00:00:00Z" "$out" "rate ending at year 9999"
out=$(mt cron next 'rate(1 minute)' --after 9999-12-31T23:57:00Z --count 100000)
assert_eq $'9999-12-31T23:58:00Z\n9999-12-31T23:59:00Z' "$out" "the last minutes"
expect_exit 2 mt cron next '* * * * *' --after 9999-12-31T23:59:30Z
assert_contains "$ERR" "no fire time after the start" "cron at the end of time"
expect_exit 2 mt cron next '* * * * *' --after 0000-01-01T00:00:00Z
assert_contains "$ERR" '--after: "0000-01-01T00:00:00Z" is outside years 0001-9999' "year 0"
expect_exit 2 mt cron next '* * * * *' --after 10000-01-01T00:00:00Z
assert_contains "$ERR" "is not an RFC 3339 time" "year 10000"
# cron(...) years end at 2199.
out=$(mt cron next 'cron(0 0 1 1 ? 2198-2199)' --after 2197-06-01T00:00:00Z --count 5)
assert_eq $'2198-01-01T00:00:00Z\n2199-01-01T00:00:00Z' "$out" "cron to its last year"
expect_exit 2 mt cron next 'cron(0 0 1 1 ? 2199)' --after 2199-06-01T00:00:00Z
no_stdout "cron past its last year" mt cron next 'cron(0 0 1 1 ? 2199)' --after 2199-06-01T00:00:00Z
# A recurring schedule with such a rate is refused before it is stored.
expect_exit 2 mt recurring add forever e2e.insert '{}' "$expr"
assert_contains "$ERR" 'is out of range 1-36524 for days' "recurring add huge rate"
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.schedules")" "schedules written by a huge rate"

# ---- 3. text from the database is escaped ---------------------------------
id=$(sql "SELECT moontask.schedule('e2e.insert', '{\"note\": \"csi\\u009bhere\"}',
                                   now() + interval '1 day', E'key\\x1b[1m')")
# An ESC sequence, a C1 CSI (U+009B: the database holds UTF-8, and
# terminals honour it encoded too), a window-title OSC, a DEL, and a second
# line with a tab, as a traceback has.
sql "UPDATE moontask.tasks
        SET last_error = E'boom \\x1b[31mred\\x1b[0m ' || chr(155) || E'2J\\x7f end\\n'
                         || E'stack traceback:\\n\\t[C]: \\x1b]0;owned\\x07 here'
      WHERE id = $id"
mt recurring add escapes e2e.insert '{}' 'rate(5 minutes)' >/dev/null
sql "UPDATE moontask.schedules SET error = E'bad \\x1b[2J\\nsecond line' WHERE name = 'escapes'"
no_raw() { # text what: no ESC, no encoded CSI, no DEL
  assert_eq 0 "$(LC_ALL=C grep -c $'\x1b' <<<"$1" || true)" "$2: raw ESC"
  assert_eq 0 "$(LC_ALL=C grep -c $'\xc2\x9b' <<<"$1" || true)" "$2: raw CSI"
  assert_eq 0 "$(LC_ALL=C grep -c $'\x7f' <<<"$1" || true)" "$2: raw DEL"
}
list=$(mt list)
no_raw "$list" "list"
assert_contains "$list" 'boom \x1b[31mred\x1b[0m \xc2\x9b2J\x7f end' "list: LAST ERROR escaped"
[[ "$list" != *"stack traceback"* ]] || fail "list: only the first line of the error"
assert_eq 2 "$(sed '/^RECURRING/,$d' <<<"$list" | grep -c .)" "list: heading and one line per task"
assert_contains "$list" 'bad \x1b[2J\x0asecond line' "list: RECURRING error escaped onto one line"
show=$(mt show "$id")
no_raw "$show" "show"
assert_contains "$show" $'boom \\x1b[31mred\\x1b[0m \\xc2\\x9b2J\\x7f end\nstack traceback:\n\t[C]: \\x1b]0;owned\\x07 here' \
  "show: last_error keeps its lines, escapes the rest"
assert_contains "$show" 'key\x1b[1m' "show: key escaped"
assert_contains "$show" 'csi\xc2\x9bhere' "show: payload escaped"
recurring=$(mt recurring list)
no_raw "$recurring" "recurring list"
assert_contains "$recurring" 'bad \x1b[2J\x0asecond line' "recurring list: error escaped"
assert_eq 2 "$(wc -l <<<"$recurring")" "recurring list: heading and one line"
# JSON output is escaped by PostgreSQL's JSON writer, as it was (C0
# controls as \u00XX; JSON leaves C1 and DEL as they are).
json=$(mt list --json)
assert_eq 0 "$(LC_ALL=C grep -c $'\x1b' <<<"$json" || true)" "list --json: raw ESC"
assert_contains "$json" '\u001b[31mred' "list --json"
reset_db

# ---- 4. JSON nesting: one limit, MT_JSON_MAX_DEPTH = 1000 -------------------
tmp=$E2E_TMP
mkdir -p "$tmp/tasks/limits" "$tmp/schemas/limits"
cat > "$tmp/schemas/limits/tree.lua" <<'EOF'
return {
  ["$ref"] = "#/$defs/node",
  ["$defs"] = {
    node = { type = "object", properties = { child = { ["$ref"] = "#/$defs/node" } } },
  },
}
EOF
printf 'return { schema = "limits.tree", max_attempts = 1, handler = function() end }\n' \
  > "$tmp/tasks/limits/tree.lua"
cat > "$tmp/tasks/limits/spawn.lua" <<'EOF'
-- Schedules a limits.tree payload nested payload.depth levels deep.
return {
  max_attempts = 1,
  handler = function(tx, payload, ctx)
    local t = {}
    for _ = 2, payload.depth do t = { child = t } end
    tx:schedule("limits.tree", t)
  end,
}
EOF
lm() { mt --tasks "$tmp/tasks" --schemas "$tmp/schemas" "$@"; }
nested() { # depth: {"child":{"child":...{}...}}
  local open close
  open=$(printf '{"child":%.0s' $(seq 2 "$1"))
  close=$(printf '}%.0s' $(seq 2 "$1"))
  printf '%s{}%s' "$open" "$close"
}
at_limit=$(nested 1000)
over=$(nested 1001)
# The recursive schema follows a payload to the parsers' limit ...
assert_eq valid "$(lm validate limits.tree "$at_limit")" "validate at the limit"
# ... and one level more is one error naming the limit, at every entry.
for cmd in validate schedule; do
  expect_exit 2 lm $cmd limits.tree "$over"
  assert_eq "moontask: invalid JSON at byte 9000: nested deeper than the limit of 1000 levels" \
    "$ERR" "$cmd over the limit"
done
assert_eq 0 "$(tasks)" "tasks written by an over-deep payload"
id=$(lm schedule limits.tree "$at_limit")
# tx:schedule: the encoder refuses a table past the limit; at the limit
# the task is written, decoded and validated by the runtime, and run.
sql "SELECT moontask.schedule('limits.spawn', '{\"depth\": 1000}')" >/dev/null
over_id=$(sql "SELECT moontask.schedule('limits.spawn', '{\"depth\": 1001}')")
# Scheduled past the CLI by SQL, a payload over the limit is failed by the
# runtime when it first sees it, also naming the limit.
sql_id=$(sql "SELECT moontask.schedule('limits.tree', '$over')")
lm run --drain 2>>"$RUNTIME_LOG"
assert_eq "completed|2" "$(sql "SELECT string_agg(DISTINCT state, ','), count(*)
                                  FROM moontask.tasks
                                 WHERE name = 'limits.tree' AND id <> $sql_id")" \
  "limits.tree at the limit, from the CLI and from tx:schedule"
assert_eq failed "$(sql "SELECT state FROM moontask.tasks WHERE id = $over_id")" "spawn over the limit"
err=$(sql "SELECT last_error FROM moontask.tasks WHERE id = $over_id")
assert_contains "$err" "tx:schedule(limits.tree): payload: cannot encode a table nested deeper than the limit of 1000 levels at \$.child.child" \
  "tx:schedule over the limit"
assert_eq failed "$(sql "SELECT state FROM moontask.tasks WHERE id = $sql_id")" "SQL payload over the limit"
assert_contains "$(sql "SELECT last_error FROM moontask.tasks WHERE id = $sql_id")" \
  "nested deeper than the limit of 1000 levels" "SQL payload over the limit: message"
assert_eq 5 "$(tasks)" "tasks: two trees, two spawns, the over-deep one from SQL"
echo "ok: bad input limits"
