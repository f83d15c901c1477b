# When the discovery connection is killed, the runtime reconnects and keeps
# hearing NOTIFY (not only its slow poll).
source "$(dirname "$0")/lib.sh"
reset_db
cat > "$E2E_TMP/reconnect.lua" <<'CFG'
return { tasks_dir = "tests/e2e/tasks", schemas_dir = "tests/e2e/schemas", poll_interval = 30, lease_timeout = 3 }
CFG
MT_CONFIG=$E2E_TMP/reconnect.lua mt_start run
pid=$MT_PID
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'moontask discovery'" 10
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'moontask discovery'" >/dev/null
# The heartbeat (every second with this lease) notices and reconnects.
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'moontask discovery'" 10
sleep 0.5
sql "SELECT moontask.schedule('e2e.insert', '{\"n\": 1}')" >/dev/null
wait_for "SELECT count(*) = 1 FROM e2e_rows" 5
kill -TERM $pid
wait $pid || true
