# Tasks claimed far ahead at a fast pace go back once the pace slows: after
# no-op tasks (microseconds each, so claims of up to 256 a worker) come
# tasks of 0.1 s, and the runtime keeps only what its workers get through
# in about 50 ms, releasing the rest for any runtime, rather than hold
# them all as `running` behind two busy workers. Each still runs once, its
# attempt not counted twice.
source "$(dirname "$0")/lib.sh"
reset_db
sql "SELECT count(moontask.schedule('e2e.noop', '{}')) FROM generate_series(1, 100)" >/dev/null
sql "SELECT count(moontask.schedule('e2e.sleep', '{\"seconds\": 0.1}')) FROM generate_series(1, 80)" >/dev/null
mt_start run --drain --workers 2
pid=$MT_PID
# Twenty slow tasks done: the pace (a moving average) has come most of
# the way to 0.1 s, and the tasks still held, claimed along with the last
# no-op ones, are well over a second's work for two workers.
wait_for "SELECT count(*) >= 20 FROM moontask.tasks WHERE name = 'e2e.sleep' AND state = 'completed'" 30
held=$(sql "SELECT count(*) FROM moontask.tasks WHERE state = 'running'")
# About 50 ms of work a worker at 0.1 s a task is PREFETCH_MIN (4): some 8
# held, queued and running. Without the release some 60 would be.
[ "$held" -le 20 ] || fail "$held tasks held as running behind 2 workers at 0.1 s a task"
wait $pid
assert_eq "e2e.noop|completed|100|1
e2e.sleep|completed|80|1" "$(sql "SELECT name, state, count(*), max(attempts) FROM moontask.tasks GROUP BY 1, 2 ORDER BY 1, 2")" \
  "every task completed, on its first attempt"
assert_eq "80|80" "$(sql "SELECT count(*), count(DISTINCT task_id) FROM e2e_rows")" "each slow task's effects once"
