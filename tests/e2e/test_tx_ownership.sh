# The runtime owns the task's transaction: no statement a handler sends can
# end, chain or prepare it, in the runtime or in `moontask try` (whose
# --sql setup is held to the same rule). Savepoints stay allowed.
source "$(dirname "$0")/lib.sh"
probe_setup
statements=("COMMIT" "COMMIT AND CHAIN" "commit work and chain" "END" "ROLLBACK"
            "ROLLBACK AND CHAIN" "ABORT" "PREPARE TRANSACTION 'x'" "BEGIN"
            "START TRANSACTION" "/* a comment */ COMMIT" "-- line comment
COMMIT" "COMMIT PREPARED 'x'" $'-- carriage return ends a comment too\rCOMMIT AND CHAIN')
for s in "${statements[@]}"; do
  s=${s//$'\n'/\\n}
  probe schedule probe.escape "{\"sql\": \"${s//$'\r'/\\r}\"}" >/dev/null
done
probe run --workers 1 --drain 2>>"$RUNTIME_LOG"
assert_eq "${#statements[@]}" "$(sql "SELECT count(*) FROM moontask.tasks WHERE state = 'failed' AND last_error LIKE '%refused as it should be%is not allowed: the runtime owns%'")" "every escape refused"
assert_eq 0 "$(sql "SELECT count(*) FROM probe_log")" "rows left committed by escaping handlers"

# Nor may it prepare or drop statements: the runtime's own are kept on the
# connection across tasks.
sql "DELETE FROM moontask.tasks" >/dev/null
statements=("PREPARE p AS SELECT 1" "prepare p (int) AS SELECT \$1" "DEALLOCATE ALL" "deallocate prepare p")
for s in "${statements[@]}"; do
  probe schedule probe.escape "{\"sql\": \"$s\"}" >/dev/null
done
probe run --workers 1 --drain 2>>"$RUNTIME_LOG"
assert_eq "${#statements[@]}" "$(sql "SELECT count(*) FROM moontask.tasks WHERE state = 'failed' AND last_error LIKE '%refused as it should be%is not allowed: the runtime prepares every statement itself%'")" "every PREPARE and DEALLOCATE refused"

sp=$(probe schedule probe.savepoint '{}')
probe run --workers 1 --drain 2>>"$RUNTIME_LOG"
assert_eq "completed" "$(sql "SELECT state FROM moontask.tasks WHERE id = $sp")" "savepoint task"
assert_eq "kept" "$(sql "SELECT string_agg(note, ',') FROM probe_log WHERE task = 'savepoint'")" "savepoint rows"

# moontask try: the handler's escape fails the run and leaves nothing, and
# a setup statement that would commit is refused before it runs.
sql "DELETE FROM probe_log" >/dev/null
out=$(probe try probe.escape '{"sql": "COMMIT AND CHAIN"}' --json)
assert_contains "$out" '"ok":false' "try of an escaping handler"
assert_contains "$out" "is not allowed" "try's error"
expect_exit 2 probe try probe.noop '{"n": 1}' --sql "INSERT INTO probe_log (task) VALUES ('setup'); COMMIT; INSERT INTO probe_log (task) VALUES ('after')"
assert_contains "$ERR" "setup statement 1" "try --sql error names the statement"
assert_contains "$ERR" "is not allowed" "try --sql refusal"
expect_exit 2 probe try probe.noop '{"n": 1}' --sql 'DO $$ BEGIN NULL; END $$; END'
# A string read with standard_conforming_strings off ends elsewhere.
expect_exit 2 probe try probe.noop '{"n": 1}' --sql "SET standard_conforming_strings = off" \
  --sql "INSERT INTO probe_log (task) VALUES ('setup'); SELECT '\\''; COMMIT; SELECT ''"
assert_contains "$ERR" "setup statement 2: \"COMMIT\" is not allowed" "the COMMIT a backslash would hide"
assert_eq 0 "$(sql "SELECT count(*) FROM probe_log")" "rows left by try"
# Quotes, dollar quotes and comments are not statements.
probe try probe.noop '{"n": 1}' --sql "SELECT 'COMMIT; ROLLBACK', \$x\$ END; \$x\$, \"commit\" FROM (SELECT 1 AS \"commit\") t /* ; COMMIT */" --json >/dev/null
