# Schedules declared in a task file: `moontask run` upserts them as
# "<task>:<index>", each fire runs with ctx.run_at = the fire time, `list`
# shows the next fire, dropping a schedule from the file removes it, and a
# bad schedule stops the load naming the file.
source "$(dirname "$0")/lib.sh"
reset_db
dir=$E2E_TMP/tasks
mkdir -p "$dir/rec"
cat >"$dir/rec/tick.lua" <<'LUA'
return {
  schedule = {
    { cron = "*/2 * * * * *", payload = { n = 7 } },
    { cron = "0 9 * * MON", tz = "Europe/Oslo", catch_up = "skip" },
  },
  handler = function(tx, payload, ctx)
    tx:exec("INSERT INTO e2e_rows (task_id, n, at) VALUES ($1, $2, $3::timestamptz)",
            ctx.id, payload.n, ctx.run_at)
  end,
}
LUA
mt --tasks "$dir" check >/dev/null
mt_start --tasks "$dir" run
pid=$MT_PID
wait_for "SELECT count(*) >= 2 FROM moontask.tasks WHERE schedule_name = 'rec.tick:1' AND state = 'completed'" 15
kill -TERM $pid
wait $pid
assert_eq "rec.tick:1|*/2 * * * * *|UTC|once|{\"n\": 7}
rec.tick:2|0 9 * * MON|Europe/Oslo|skip|{}" \
  "$(sql "SELECT name, expression, tz, catch_up, payload FROM moontask.schedules ORDER BY name")" "schedules from the task file"
assert_eq 0 "$(sql "SELECT count(*) FROM e2e_rows r JOIN moontask.tasks t ON t.id = r.task_id WHERE r.at <> t.fire_at OR r.n <> 7")" "ctx.run_at is the fire time"
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.tasks WHERE schedule_name = 'rec.tick:2'")" "no fire of the weekly schedule"
listing=$(mt --tasks "$dir" list)
assert_contains "$listing" "RECURRING" "list shows schedules"
assert_contains "$listing" "T09:00:00+01:00" "list shows the next Monday 09:00 in Oslo"

# The file now declares only the first schedule: the second goes.
sed -i '/0 9 \* \* MON/d' "$dir/rec/tick.lua"
mt --tasks "$dir" run --drain 2>>"$RUNTIME_LOG"
assert_eq "rec.tick:1" "$(sql "SELECT string_agg(name, ',') FROM moontask.schedules")" "schedules after the file dropped one"
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.tasks WHERE state <> 'completed'")" "every task completed"

# A bad schedule stops the load with the file and the problem.
sed -i 's|\*/2 \* \* \* \* \*|*/2 * * * * 9|' "$dir/rec/tick.lua"
expect_exit 2 mt --tasks "$dir" run --drain
assert_contains "$ERR" "tick.lua: schedule[1]" "the bad schedule named"
assert_contains "$ERR" "day-of-week" "the bad field named"
