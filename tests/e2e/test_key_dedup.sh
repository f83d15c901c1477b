# A key held by a live task returns that task; once it is finished the key
# is free again. Same through SQL and the CLI.
source "$(dirname "$0")/lib.sh"
reset_db
a=$(sql "SELECT moontask.schedule('e2e.insert', '{\"n\": 1}', now() + interval '1 hour', 'k1')")
b=$(sql "SELECT moontask.schedule('e2e.insert', '{\"n\": 2}', now(), 'k1')")
c=$(mt schedule e2e.insert '{"n": 3}' --key k1)
assert_eq "$a" "$b" "SQL de-duplication"
assert_eq "$a" "$c" "CLI de-duplication"
d=$(mt schedule e2e.insert '{"n": 4}' --key k2)
[ "$d" != "$a" ] || fail "another key got the same task"
assert_eq 2 "$(sql "SELECT count(*) FROM moontask.tasks")" "tasks"
mt cancel "$a" >/dev/null
e=$(mt schedule e2e.insert '{"n": 5}' --key k1)
[ "$e" != "$a" ] || fail "a cancelled task still holds its key"
mt run --drain 2>>"$RUNTIME_LOG"
f=$(mt schedule e2e.insert '{"n": 6}' --key k2)
[ "$f" != "$d" ] || fail "a completed task still holds its key"
assert_eq "4,5" "$(sql "SELECT string_agg(n::text, ',' ORDER BY n) FROM e2e_rows")" "rows"
