# Hot reload under load: while 10,000 tasks run on 4 workers, their task
# file and the library module it requires are rewritten 50 times, two
# versions in turn and every fifth time a broken one. Every task completes
# exactly once; each ran one whole version (the task file's and the
# module's numbers agree: 11 or 22, never 12 or 21); the broken version
# never ran (it would write 99).
source "$(dirname "$0")/lib.sh"

reset_db
dir=$E2E_TMP/tasks
mkdir -p "$dir/ld" "$dir/lib"
# Saved as editors save, to a temporary file renamed over the old one: a
# refusal then comes from the broken version alone, never from a file
# caught half-written.
save() { cat >"$1.tmp" && mv "$1.tmp" "$1"; }
# Two files saved together: both written aside, then renamed into place by
# one process, microseconds apart. A reload takes a save whole when its
# files land within 50 ms of each other (README, Hot reload); two `mv`
# processes on a loaded machine (the ThreadSanitizer run) were once more
# than 50 ms apart, and the reload rightly ran the mix it saw.
save_both() { # FILE1 FILE2, their contents already in FILE1.tmp, FILE2.tmp
  perl -e 'for (@ARGV) { rename "$_.tmp", $_ or die "rename $_: $!\n" }' "$1" "$2"
}
version() { # v: the task file and its module, saved together
  cat >"$dir/lib/ver.lua.tmp" <<LUA
return { n = $1 }
LUA
  cat >"$dir/ld/work.lua.tmp" <<LUA
local ver = require("lib.ver")
return {
  handler = function(tx, payload, ctx)
    -- 3 ms each, so that the 10,000 tasks outlast the 50 rewrites.
    tx:exec("SELECT pg_sleep(0.003)")
    tx:exec("INSERT INTO e2e_rows (task_id, n) VALUES (\$1, \$2)", ctx.id, $1 * 10 + ver.n)
  end,
}
LUA
  save_both "$dir/lib/ver.lua" "$dir/ld/work.lua"
}
broken() {
  save "$dir/ld/work.lua" <<'LUA'
return {
  handler = function(tx, payload, ctx)
    tx:exec("INSERT INTO e2e_rows (task_id, n) VALUES ($1, 99)", ctx.id)
  end,
  oops oops
}
LUA
}
version 1
cat >"$E2E_TMP/config.lua" <<EOF
return { tasks_dir = "$dir", schemas_dir = "$E2E_TMP/schemas", workers = 4,
         poll_interval = 0.2, lease_timeout = 10, task_timeout = 10,
         shutdown_grace = 5 }
EOF
sql "SELECT count(moontask.schedule('ld.work', '{}')) FROM generate_series(1, 10000)" >/dev/null
MT_CONFIG=$E2E_TMP/config.lua mt_start run
RUNTIME=$MT_PID
# Rewrites start once it runs (a start reads the files as they are, and a
# half-written one would stop it, as it would any start).
wait_logged "$MT_LOG" ' from .* \(version ' 20

for i in $(seq 1 50); do
  if [ $((i % 5)) -eq 0 ]; then
    broken
  else
    version $((i % 2 + 1))
  fi
  sleep 0.1
done
# The rewrites happened under load: tasks were still waiting.
left=$(sql "SELECT count(*) FROM moontask.tasks WHERE state <> 'completed'")
[ "$left" -gt 0 ] || fail "every task had run before the rewrites ended: schedule more"
version 2
wait_for "SELECT count(*) = 10000 FROM moontask.tasks WHERE state = 'completed'" 120
kill -TERM "$RUNTIME"
wait "$RUNTIME" || fail "the runtime did not exit cleanly"

assert_eq 10000 "$(sql "SELECT count(*) FROM e2e_rows")" "rows (once per task)"
assert_eq 10000 "$(sql "SELECT count(DISTINCT task_id) FROM e2e_rows")" "tasks with a row"
assert_eq "" "$(sql "SELECT string_agg(DISTINCT n::text, ',') FROM e2e_rows WHERE n NOT IN (11, 22)")" "rows of a mixed or broken version"
# Both versions ran: the rewrites did take effect under load.
assert_eq 2 "$(sql "SELECT count(DISTINCT n) FROM e2e_rows")" "versions that ran"
# Each task recorded one version, the one it ran: one hash per version's
# rows, two hashes, both among those the reloads logged.
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.tasks WHERE array_length(versions, 1) IS DISTINCT FROM 1 OR versions[1] IS NULL")" \
  "tasks without exactly one version"
ran="FROM moontask.tasks t JOIN e2e_rows r ON r.task_id = t.id"
assert_eq "1|1|2" "$(sql "SELECT (SELECT max(c) FROM (SELECT count(DISTINCT t.versions[1]) c $ran GROUP BY r.n) a),
    (SELECT max(c) FROM (SELECT count(DISTINCT r.n) c $ran GROUP BY t.versions[1]) b),
    (SELECT count(DISTINCT versions[1]) FROM moontask.tasks)")" \
  "hashes per version, versions per hash, hashes"
for v in $(sql "SELECT DISTINCT versions[1] FROM moontask.tasks"); do
  grep -q "changed ld.work ($v\|was $v)" "$MT_LOG" || fail "version $v was never logged"
done
refused=$(grep -c 'reload refused' "$MT_LOG" || true)
[ "$refused" -ge 1 ] || fail "no broken version was refused: $(grep -c reloaded "$MT_LOG") reloads"
echo "ok: $(grep -c 'reloaded the tasks' "$MT_LOG") reloads, $refused refused, 10000 tasks once each"
