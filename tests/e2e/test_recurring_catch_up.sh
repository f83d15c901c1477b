# Fires missed while no runtime was up: 'once' (the default) creates one
# task for the missed window, at its latest fire; 'skip' none; 'all' one
# task per missed fire.
source "$(dirname "$0")/lib.sh"
reset_db
for p in once skip all; do
  sql "SELECT moontask.schedule_recurring('cu.$p', 'e2e.insert', '{}', '*/4 * * * * *');
       UPDATE moontask.schedules SET catch_up = '$p' WHERE name = 'cu.$p'" >/dev/null
done
mt_start run; pid=$MT_PID
wait_for "SELECT count(*) = 3 FROM moontask.schedules WHERE last_fire_at IS NOT NULL" 10
kill -TERM $pid
wait $pid
# Restart 1.3 to 1.6 s after a fire (every 4 s): the latest missed fire is
# then well over a second (the grace) old, so 'skip' must not count it as
# merely late, and the next falls due 2.4 s later at the earliest, time
# enough for the draining runtime to start and look at the schedules even
# under the sanitizers on a loaded machine (with fires 2 s apart it had
# 0.4 s, and sometimes took longer).
sleep 9
until now=$(date +%s%N) && [ $(( (now / 1000000000) % 4 )) -eq 1 ] &&
      [ $(( (now / 1000000) % 1000 )) -ge 300 ] && [ $(( (now / 1000000) % 1000 )) -lt 600 ]; do
  sleep 0.02
done
restart=$(sql "SELECT extract(epoch FROM now())")
mt run --drain 2>>"$RUNTIME_LOG"

missed() { # schedule: tasks whose fire time lies in the downtime
  sql "SELECT count(*) FROM moontask.tasks t JOIN moontask.schedules s ON s.name = t.schedule_name
        WHERE t.schedule_name = '$1' AND t.fire_at > (SELECT max(fire_at) FROM moontask.tasks
                                                      WHERE schedule_name = '$1' AND fire_at < to_timestamp($restart - 8))
          AND t.fire_at <= to_timestamp($restart)"
}
# The runtime stopped at least 9 s before the restart: the last fire before
# the downtime is older than restart - 8, and the downtime holds at least 2.
latest=$(sql "SELECT (floor($restart / 4) * 4)::bigint")
before=$(sql "SELECT extract(epoch FROM max(fire_at))::bigint FROM moontask.tasks WHERE schedule_name = 'cu.all' AND fire_at < to_timestamp($restart - 8)")
expected_all=$(( (latest - before) / 4 ))
[ "$expected_all" -ge 2 ] || fail "downtime too short: $expected_all fires missed"
assert_eq 1 "$(missed cu.once)" "'once': one task for the missed window"
assert_eq "$latest" "$(sql "SELECT extract(epoch FROM max(fire_at))::bigint FROM moontask.tasks WHERE schedule_name = 'cu.once'")" "'once': at the latest missed fire"
assert_eq 0 "$(missed cu.skip)" "'skip': no task for the missed window"
assert_eq "$expected_all" "$(missed cu.all)" "'all': one task per missed fire"
assert_eq "$expected_all" "$(sql "SELECT count(DISTINCT fire_at) FROM moontask.tasks WHERE schedule_name = 'cu.all' AND fire_at > to_timestamp($before)")" "'all': distinct fire times"
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.tasks WHERE state <> 'completed'")" "every task completed"
# And the schedules carry on from now.
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.schedules WHERE next_fire_at IS NULL OR next_fire_at <= to_timestamp($restart) OR error IS NOT NULL")" "next fires in the future"
