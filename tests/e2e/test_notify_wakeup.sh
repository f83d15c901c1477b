# A running runtime picks up a task committed from another client through
# NOTIFY, without waiting for its (here deliberately long) poll interval.
source "$(dirname "$0")/lib.sh"
reset_db
cat > "$E2E_TMP/slowpoll.lua" <<'CFG'
return { tasks_dir = "tests/e2e/tasks", schemas_dir = "tests/e2e/schemas", poll_interval = 30 }
CFG
MT_CONFIG=$E2E_TMP/slowpoll.lua mt_start run
pid=$MT_PID
sleep 1 # let it start and go idle
sql "SELECT moontask.schedule('e2e.insert', '{\"n\": 7}')" >/dev/null
wait_for "SELECT count(*) = 1 FROM e2e_rows" 5
# and a task due in 1.5s runs on time through the notified due time
sql "SELECT moontask.schedule('e2e.insert', '{\"n\": 8}', now() + interval '1.5 seconds')" >/dev/null
wait_for "SELECT count(*) = 2 FROM e2e_rows" 5
lag=$(sql "SELECT extract(epoch FROM r.at - t.run_at) FROM e2e_rows r JOIN moontask.tasks t ON t.id = r.task_id WHERE r.n = 8")
awk -v l="$lag" 'BEGIN { exit !(l >= 0 && l < 5) }' || fail "future task ran $lag s after its time"
kill -TERM $pid
wait $pid
