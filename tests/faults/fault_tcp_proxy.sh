# The database unreachable behind a TCP proxy (tests/faults/tcp_proxy.py)
# on 127.0.0.1, first refusing connections, then silently dropping every
# packet, while tasks keep falling due. The runtime and the proxy share a
# network namespace of their own, whose loopback the proxy plugs (packets
# leave, and never arrive, as on a network that lost them); the server is
# reached through its Unix socket, outside it.
#
# Refused: the runtime says so, and reconnects once the proxy forwards
# again. Dropped: nothing tells the runtime, and only its own timeouts can:
# the connection defaults (keepalives, tcp_user_timeout, connect_timeout;
# runtime/postgres/pg.c) must make it notice the dead connection, and a
# connection attempt that goes unanswered, within seconds (the deadlines
# below are generous; libpq's own defaults take minutes to hours). Once
# the proxy forwards again, the same runtime completes every task exactly
# once.
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || skip "needs root, for a network namespace whose loopback drops packets"
for tool in unshare nsenter tc ip python3; do
  command -v "$tool" >/dev/null || skip "$tool is not installed"
done
unshare --net sh -c 'ip link set lo up && tc qdisc replace dev lo root tbf rate 8bit burst 10000 limit 100000000' 2>/dev/null ||
  skip "cannot hold packets in a network namespace of our own (unshare --net; tc qdisc tbf)"

read -r sock db user < <(url_parts)
if [ "$sock" = "-" ] || [ ! -S "$sock" ]; then
  own_db # a server on a Unix socket, ours
  read -r sock db user < <(url_parts)
else
  mtf migrate >/dev/null
  reset_db
fi
[ "$user" != "-" ] || user=$(sql "SELECT current_user")

# The namespace lives as long as its first process, which the exit trap
# kills; the proxy and the runtime join it with nsenter, which execs them
# (their process ids are the ones the test holds).
unshare --net sleep 100000 &
netns=$!
on_exit "kill $netns 2>/dev/null"
wait_until_ns() {
  local deadline=$((SECONDS + 10))
  until [ "$(readlink "/proc/$netns/ns/net" 2>/dev/null)" != "$(readlink /proc/self/ns/net)" ]; do
    [ $SECONDS -lt $deadline ] || fail "the network namespace did not appear"
    sleep 0.05
  done
}
wait_until_ns
in_ns() { nsenter --net="/proc/$netns/ns/net" "$@"; }
in_ns ip link set lo up

control=$E2E_TMP/proxy.mode state=$E2E_TMP/proxy.state
echo forward >"$control"
# nsenter itself, not in_ns: $! must be the proxy's process id, not that
# of a subshell running a function.
nsenter --net="/proc/$netns/ns/net" python3 "$FAULTS_DIR/tcp_proxy.py" --listen 127.0.0.1:15432 \
  --upstream "$sock" --control "$control" --state "$state" --drop-packets >"$E2E_TMP/proxy.log" 2>&1 &
E2E_PIDS+=($!)
E2E_LOGS+=("$E2E_TMP/proxy.log")
proxy_mode() {
  echo "$1" >"$control.tmp" && mv "$control.tmp" "$control"
  local deadline=$((SECONDS + 20))
  until [ "$(cat "$state" 2>/dev/null)" = "$1" ]; do
    [ $SECONDS -lt $deadline ] || fail "the proxy did not switch to $1: $(tail -n 3 "$E2E_TMP/proxy.log")"
    sleep 0.05
  done
  echo "proxy: $1 ($(count_where "state = 'completed'") tasks completed so far)"
}
proxy_mode forward

# The runtime, in the namespace, reaches the server through the proxy.
cat >"$E2E_TMP/moontask-in-ns" <<EOF
#!/bin/sh
exec nsenter --net=/proc/$netns/ns/net "$MOONTASK_BIN" "\$@"
EOF
chmod +x "$E2E_TMP/moontask-in-ns"
tcp_url="postgresql://$user@127.0.0.1:15432/$db"
tasks=300
schedule_inserts 100 0.02
schedule_inserts 200 0.02 15
DATABASE_URL=$tcp_url MOONTASK_BIN=$E2E_TMP/moontask-in-ns mt_start run --workers 2
pid=$MT_PID
wait_for "SELECT count(*) >= 100 FROM moontask.tasks WHERE state = 'completed'" 60
# Both workers and discovery connected through the proxy (the pruner and
# the acknowledgements have connections of their own too).
wait_for "SELECT count(*) FILTER (WHERE application_name LIKE 'moontask worker%') = 2
            AND count(*) FILTER (WHERE application_name = 'moontask discovery') = 1
           FROM pg_stat_activity" 30

# Refused: every connection reset, every new one refused.
proxy_mode refuse
wait_logged "$MT_LOG" "Connection refused" 30
sleep 2
alive "$pid" || fail "the runtime exited while the database refused connections"
proxy_mode forward
before=$(count_where "state = 'completed'")
wait_for "SELECT count(*) > $before FROM moontask.tasks WHERE state = 'completed'" 60

# Dropped: only the runtime's own timeouts can tell. Looked for in what it
# logs from now on: an established connection found dead (ETIMEDOUT, from
# tcp_user_timeout or the keepalives), and a connection attempt given up
# (unanswered SYNs: ETIMEDOUT again where the kernel holds connecting to
# tcp_user_timeout, as Linux does, else libpq's connect_timeout, "timeout
# expired"). With libpq's own settings neither happens for minutes.
mark=$(log_mark "$MT_LOG")
proxy_mode blackhole
start=$SECONDS
dead="could not (receive|send) data (from|to) server: Connection timed out"
unanswered="failed: (Connection timed out|timeout expired)"
wait_logged "$MT_LOG" "$dead" 60 "$mark"
wait_logged "$MT_LOG" "$unanswered" $((60 - (SECONDS - start))) "$mark"
echo "the runtime noticed the dead connection, and gave up a connection attempt, within $((SECONDS - start)) s"
alive "$pid" || fail "the runtime exited while the database was unreachable"
proxy_mode forward

assert_no_lapsed_lease "after the blackhole" 60
assert_exactly_once "$tasks" 120
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'moontask discovery'" 30
stop_runtime "$pid"
