# A worker without a connection claims nothing and loses no attempt: while
# the database refuses new connections, the workers' sessions are killed
# and tasks fall due; nothing runs and no attempt is counted. Once the
# database takes connections again every task runs exactly once.
source "$(dirname "$0")/lib.sh"
probe_setup
db=$(sql "SELECT current_database()")
admin() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -c "$1" >/dev/null; }
reopen() { psql -X -q -At -d "$DATABASE_URL" -c "SELECT 1" >/dev/null 2>&1 ||
  psql -X -q -At "${DATABASE_URL/\/$db\?//postgres?}" -c "ALTER DATABASE \"$db\" WITH ALLOW_CONNECTIONS true" >/dev/null; }
on_exit reopen
mt_start --tasks tests/e2e/hardening run --workers 2
wait_for "SELECT count(*) = 2 FROM pg_stat_activity WHERE application_name LIKE 'moontask worker%'" 10
sql "INSERT INTO moontask.tasks (name, payload, run_at)
     SELECT 'probe.noop', jsonb_build_object('n', i), now() + interval '2 seconds'
       FROM generate_series(1, 200) i" >/dev/null
# A session opened now can still look while no new one may open.
coproc WATCH { psql -X -q -At -d "$DATABASE_URL"; }
echo "SELECT 'connected';" >&"${WATCH[1]}"
read -r -t 20 ready <&"${WATCH[0]}" || true
assert_eq connected "${ready:-}" "the watching session"
# From the maintenance database: no new session may open in the test one.
psql -X -q -At "${DATABASE_URL/\/$db\?//postgres?}" -c "
  ALTER DATABASE \"$db\" WITH ALLOW_CONNECTIONS false;
  SELECT pg_terminate_backend(pid) FROM pg_stat_activity
   WHERE datname = '$db' AND application_name LIKE 'moontask worker%'" >/dev/null
sleep 5
# Looked at before connections are allowed again: a worker may reconnect
# the moment they are.
printf '%s\n' "SELECT count(*) FILTER (WHERE state <> 'scheduled') || '|' || sum(attempts) FROM moontask.tasks;" '\q' >&"${WATCH[1]}"
read -r -t 20 during <&"${WATCH[0]}" || during="(no answer)"
psql -X -q -At "${DATABASE_URL/\/$db\?//postgres?}" -c "
  ALTER DATABASE \"$db\" WITH ALLOW_CONNECTIONS true" >/dev/null
echo "while no worker could connect: $during (tasks taken | attempts counted)"
assert_eq "0|0" "$during" "tasks run or charged while no worker could connect"
wait_for "SELECT count(*) = 200 FROM moontask.tasks WHERE state = 'completed'" 60
kill -TERM $MT_PID; wait $MT_PID || true
assert_eq "200|200|0" "$(sql "SELECT count(*), sum(attempts), count(*) FILTER (WHERE last_error IS NOT NULL) FROM moontask.tasks")" "each task once"
assert_eq 200 "$(sql "SELECT count(DISTINCT note) FROM probe_log WHERE task = 'noop'")" "rows written"
grep -q "taking no tasks, retrying in" "$MT_LOG" || fail "the workers did not say why they took no tasks: $(tail -5 "$MT_LOG")"
