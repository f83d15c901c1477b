# Retention under a constant load: tasks scheduled at 100 a second for 24
# seconds, run by a runtime that keeps completed tasks 2 seconds and prunes
# every second. The table holds about (2 + 1.5) s of tasks, some 350 rows,
# from a few seconds on, and stays there: without pruning it would grow by
# 100 rows a second, to 2,400. And every task ran: pruning takes only
# finished tasks.
source "$(dirname "$0")/lib.sh"
reset_db

cfg=$E2E_TMP/config.lua
cat >"$cfg" <<'EOF'
return {
  tasks_dir = "tests/e2e/tasks",
  schemas_dir = "tests/e2e/schemas",
  workers = 2,
  poll_interval = 0.2,
  shutdown_grace = 5,
  retention = { completed = 2, interval = 1 },
}
EOF
MT_CONFIG=$cfg mt_start run
runtime=$MT_PID

# The load: ten tasks every 0.1 s, each ten committed on their own, from one
# session (a psql per batch would be the bottleneck), 2,400 in all.
psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -c "
  DO \$\$ BEGIN
    FOR i IN 1..240 LOOP
      PERFORM moontask.schedule('e2e.insert', jsonb_build_object('n', i * 10 + g))
         FROM generate_series(1, 10) g;
      COMMIT;
      PERFORM pg_sleep(0.1);
    END LOOP;
  END \$\$" &
load=$!
on_exit "kill $load 2>/dev/null"

count() { sql "SELECT count(*) FROM moontask.tasks"; }
runs() { sql "SELECT count(*) FROM e2e_rows"; }
# The largest row count seen over $1 seconds, looked at every 0.25 s: a peak
# just before a prune is what the bound must hold for.
peak() {
  local until=$((SECONDS + $1)) max=0 n
  while [ $SECONDS -lt $until ]; do
    n=$(count)
    [ "$n" -le "$max" ] || max=$n
    sleep 0.25
  done
  echo "$max"
}

sleep 6
runs_a=$(runs)
early=$(peak 6) # from 6 to 12 s
late=$(peak 8)  # from 12 to 20 s
runs_b=$(runs)
echo "peak rows: $early (6-12 s), $late (12-20 s); runs: $runs_a, then $runs_b"

# The load was on: the runtime ran some 1,400 tasks between the two looks,
# so that the table would have grown by as many without pruning.
[ $((runs_b - runs_a)) -ge 700 ] || fail "only $((runs_b - runs_a)) tasks ran in 14 s: no load to prune under"
# Steady: no growth from the first window to the second, beyond noise (a
# prune that came 1.5 s late, 150 rows), and far below the unpruned 2,000.
[ "$late" -le $((early + 250)) ] || fail "the table grew from $early to $late rows under a constant load"
[ "$late" -le 1000 ] || fail "$late rows: pruning does not keep up (2,000 without it)"

wait "$load"
# Every task ran, once: pruning took none before it finished.
wait_for "SELECT count(*) = 2400 FROM e2e_rows" 30
assert_eq 2400 "$(sql "SELECT count(DISTINCT n) FROM e2e_rows")" "each task ran once"
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.tasks WHERE state <> 'completed'")" "nothing left to run"
kill -TERM "$runtime"
wait "$runtime"
