# A task scheduled in a transaction that rolls back never exists; one whose
# transaction commits runs once.
source "$(dirname "$0")/lib.sh"
reset_db
sql "BEGIN; SELECT moontask.schedule('e2e.insert', '{\"n\": 1}'); ROLLBACK;"
sql "BEGIN; SELECT moontask.schedule('e2e.insert', '{\"n\": 2}'); COMMIT;" >/dev/null
mt run --drain 2>>"$RUNTIME_LOG"
assert_eq 1 "$(sql "SELECT count(*) FROM moontask.tasks")" "tasks after rollback+commit"
assert_eq 2 "$(sql "SELECT string_agg(n::text, ',') FROM e2e_rows")" "rows written"
assert_eq completed "$(sql "SELECT state FROM moontask.tasks")" "state"
