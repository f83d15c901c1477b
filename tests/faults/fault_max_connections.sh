# max_connections exhausted while the runtime reconnects: its sessions
# are terminated, and every slot they held (and every free one) is taken by
# other clients before it can come back, so each of its attempts is
# refused with "too many clients". Meanwhile tasks fall due: none is
# claimed or charged an attempt. Once the other clients leave, the same
# runtime connects again by itself and every task runs exactly once. The
# test runs its own server, with max_connections lowered to 20.
source "$(dirname "$0")/lib.sh"
own_db
db=$(sql "SELECT current_database()")
maintenance=${DATABASE_URL/\/$db\?//postgres?}
[ "$maintenance" != "$DATABASE_URL" ] || fail "cannot name the maintenance database in $DATABASE_URL"
msql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$maintenance" -c "$1"; }
sql "ALTER SYSTEM SET max_connections = 20" >/dev/null
own_db_stop
own_db_start
assert_eq 20 "$(sql "SHOW max_connections")" "max_connections after the restart"

mt_start run --workers 2
pid=$MT_PID
schedule_inserts 100 0.02
wait_for "SELECT count(*) = 100 FROM moontask.tasks WHERE state = 'completed'" 60

# A session opened now, to watch and to schedule while no new one can
# open. Statements that return nothing are followed by a SELECT, so that
# each call reads exactly one line.
coproc ADMIN { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DATABASE_URL" 2>&1; }
admin() {
  local line
  printf '%s\n' "$1" >&"${ADMIN[1]}"
  read -r -t 30 line <&"${ADMIN[0]}" || line="(no answer from the watching session)"
  echo "$line"
}
assert_eq connected "$(admin "SELECT 'connected';")" "the watching session"

# No new session in the test's database while the runtime's are ended
# and the slots filled; the fillers connect to the maintenance database.
msql "ALTER DATABASE \"$db\" WITH ALLOW_CONNECTIONS false" >/dev/null
msql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE 'moontask %'" >/dev/null
fillers=()
# A backend in pg_sleep does not notice its client leaving: the fillers'
# sessions are ended from the server's side too.
stop_fillers() {
  local f
  [ ${#fillers[@]} -eq 0 ] || admin "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                                      WHERE application_name = 'moontask-fault-filler';" >/dev/null
  for f in "${fillers[@]}"; do kill "$f" 2>/dev/null || true; done
  for f in "${fillers[@]}"; do wait "$f" 2>/dev/null || true; done
  fillers=()
}
on_exit stop_fillers
# Slots taken, and by how many fillers, in one look.
slots() {
  admin "SELECT count(*) || ' ' || count(*) FILTER (WHERE application_name = 'moontask-fault-filler')
           FROM pg_stat_activity WHERE backend_type = 'client backend';"
}
deadline=$((SECONDS + 60))
while :; do
  read -r taken connected <<<"$(slots)"
  [ "$taken" -lt 20 ] || break
  [ $SECONDS -lt $deadline ] || fail "could not take every connection slot ($taken of 20 taken)"
  # A filler refused (a reconnecting runtime held a slot for a moment)
  # has exited; one alive but not connected yet is on its way.
  live=()
  for f in "${fillers[@]}"; do alive "$f" && live+=("$f"); done
  fillers=("${live[@]}")
  for ((i = taken + ${#fillers[@]} - connected; i < 20; i++)); do
    PGAPPNAME=moontask-fault-filler psql -X -q -d "$maintenance" -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
    fillers+=($!)
  done
  sleep 0.5
done
assert_eq 0 "$(admin "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'moontask %';")" \
  "the runtime's sessions once the slots are taken"
admin "ALTER DATABASE \"$db\" WITH ALLOW_CONNECTIONS true; SELECT 'allowed';" >/dev/null
echo "all 20 slots taken: ${#fillers[@]} fillers and the watching session"

# The runtime now tries, and is refused for want of a slot.
wait_logged "$MT_LOG" "too many clients already" 60
last=$(admin "SELECT coalesce(max(id), 0) FROM moontask.tasks;")
assert_eq 50 "$(admin "SELECT count(moontask.schedule('faults.insert', '{\"pause\": 0.02}')) FROM generate_series(1, 50);")" \
  "tasks scheduled while the slots are taken"
sleep 2
# All 50 still waiting, untouched: none taken, none run, no attempt
# charged while the runtime had no connection.
assert_eq "50" "$(admin "SELECT count(*) FROM moontask.tasks
                          WHERE id > $last AND state = 'scheduled' AND attempts = 0;")" \
  "tasks still scheduled with no attempt while the runtime had no connection"
alive "$pid" || fail "the runtime exited while it could not connect"

stop_fillers
printf '\\q\n' >&"${ADMIN[1]}"
assert_exactly_once 150 60
stop_runtime "$pid"
