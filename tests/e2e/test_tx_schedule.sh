# tx:schedule writes in the handler's transaction: the follow-up scheduled by
# a failed attempt vanishes, the one from the successful attempt runs.
source "$(dirname "$0")/lib.sh"
reset_db
id=$(mt schedule e2e.spawn '{}')
mt run --drain 2>>"$RUNTIME_LOG"
assert_eq "completed|2" "$(sql "SELECT state, attempts FROM moontask.tasks WHERE id = $id")" "parent"
assert_eq 1 "$(sql "SELECT count(*) FROM moontask.tasks WHERE name = 'e2e.insert'")" "follow-ups"
assert_eq 2 "$(sql "SELECT string_agg(n::text, ',') FROM e2e_rows")" "follow-up ran from attempt 2"
assert_eq completed "$(sql "SELECT state FROM moontask.tasks WHERE name = 'e2e.insert'")" "follow-up state"
