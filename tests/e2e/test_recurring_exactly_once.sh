# Three runtimes on one database with a schedule firing every two seconds,
# one of them killed with -9 halfway: every fire time in the window has
# exactly one task, with no gaps, and every task completed exactly once.
source "$(dirname "$0")/lib.sh"
reset_db
start=$(sql "SELECT extract(epoch FROM now())::bigint")
sql "SELECT moontask.schedule_recurring('every2s', 'e2e.insert', '{}', '*/2 * * * * *')" >/dev/null
mt_start run --workers 2; p1=$MT_PID
mt_start run --workers 2; p2=$MT_PID
mt_start run --workers 2; p3=$MT_PID
sleep 6
kill -9 $p1
wait $p1 2>/dev/null || true
sleep 6
# Remove the schedule before the runtimes stop, so that the window ends
# where they were all still up.
sql "SELECT moontask.unschedule_recurring('every2s')" >/dev/null
end=$(sql "SELECT extract(epoch FROM now())::bigint")
kill -TERM $p2 $p3
wait $p2
wait $p3
# Tasks the killed runtime held come back when their lease lapses.
mt run --drain 2>>"$RUNTIME_LOG"

q() { sql "SELECT $1 FROM moontask.tasks WHERE schedule_name = 'every2s'"; }
n=$(q "count(*)")
[ "$n" -ge 5 ] || fail "only $n fires in 12 seconds"
assert_eq "$n" "$(q "count(DISTINCT fire_at)")" "one task per fire time"
assert_eq "$n" "$(q "(extract(epoch FROM max(fire_at) - min(fire_at)) / 2 + 1)::int")" "fires 2 s apart with no gap"
assert_eq 0 "$(q "count(*) FILTER (WHERE extract(epoch FROM fire_at)::bigint % 2 <> 0 OR run_at <> fire_at)")" "fire times on even seconds, run_at = fire_at"
assert_eq t "$(q "min(extract(epoch FROM fire_at)) <= $start + 3 AND max(extract(epoch FROM fire_at)) >= $end - 3")" "fires cover the window"
assert_eq "$n" "$(q "count(*) FILTER (WHERE state = 'completed')")" "every task completed"
assert_eq "$n" "$(sql "SELECT count(DISTINCT task_id) FROM e2e_rows")" "rows: one per task"
assert_eq "$n" "$(sql "SELECT count(*) FROM e2e_rows")" "rows: each exactly once"
