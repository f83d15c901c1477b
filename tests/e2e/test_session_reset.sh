# Nothing a handler does to its session survives into the next task on the
# same connection, whether the handler committed or failed.
source "$(dirname "$0")/lib.sh"
clean="ro=off path=\"\$user\", public timeout=0 app=moontask worker 0 prepared=0 advisory=0 temp=0 listen=0 cursors=0 lastval=none"
for payload in '{}' '{"fail": true}'; do
  probe_setup
  dirty=$(probe schedule probe.session_dirty "$payload")
  check=$(probe schedule probe.session_check '{}')
  probe run --workers 1 --drain 2>>"$RUNTIME_LOG"
  want=completed
  [ "$payload" = '{}' ] || want=failed
  assert_eq "$want" "$(sql "SELECT state FROM moontask.tasks WHERE id = $dirty")" "dirty task $payload"
  assert_eq "completed" "$(sql "SELECT state FROM moontask.tasks WHERE id = $check")" "next task after $payload"
  assert_eq "$clean" "$(sql "SELECT note FROM probe_log WHERE task = 'check'")" "session after $payload"
done

# The runtime's prepared statements outlive a task: a handler may not drop
# them, and one that does all the same (dynamic SQL) cannot commit, while
# the next task on the connection prepares afresh.
probe_setup
first=$(probe schedule probe.dealloc '{}')
dropper=$(probe schedule probe.dealloc '{"drop": true}')
after=$(probe schedule probe.dealloc '{}')
probe run --workers 1 --drain 2>>"$RUNTIME_LOG"
assert_eq "completed failed completed" \
  "$(sql "SELECT string_agg(state || '', ' ' ORDER BY id) FROM moontask.tasks WHERE id IN ($first, $dropper, $after)")" \
  "tasks around a DEALLOCATE ALL"
assert_contains "$(sql "SELECT last_error FROM moontask.tasks WHERE id = $dropper")" \
  "the runtime's prepared statements are gone" "the dropper's error"
assert_eq "1" "$(sql "SELECT attempts FROM moontask.tasks WHERE id = $after")" "attempts of the task after it"
assert_eq "$first $after" "$(sql "SELECT string_agg(note, ' ' ORDER BY id) FROM probe_log WHERE task = 'dealloc'")" "rows committed"
