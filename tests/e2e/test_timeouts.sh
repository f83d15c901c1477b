# task timeouts stop a handler spinning in Lua (even one that pcalls) and a
# SQL statement that runs too long; each counts as a failed attempt.
source "$(dirname "$0")/lib.sh"
reset_db
spin=$(mt schedule e2e.spin '{}')
slow=$(mt schedule e2e.slow_sql '{}')
start=$SECONDS
mt run --drain 2>>"$RUNTIME_LOG"
[ $((SECONDS - start)) -le 10 ] || fail "drain took $((SECONDS - start))s"
assert_eq "failed|1" "$(sql "SELECT state, attempts FROM moontask.tasks WHERE id = $spin")" "spinning task"
assert_contains "$(sql "SELECT last_error FROM moontask.tasks WHERE id = $spin")" "timed out after 0.5s" "spin error"
assert_eq "failed|1" "$(sql "SELECT state, attempts FROM moontask.tasks WHERE id = $slow")" "slow SQL task"
assert_contains "$(sql "SELECT last_error FROM moontask.tasks WHERE id = $slow")" "timed out" "slow SQL error"
assert_eq 0 "$(sql "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%' AND state = 'active'")" "the slow statement was cancelled"
