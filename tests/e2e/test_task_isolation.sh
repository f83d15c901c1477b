# One task cannot change what another sees: a task that replaces library
# functions, and reaches for every shared table and metatable it can name,
# runs first on a single worker; the next task finds everything intact.
source "$(dirname "$0")/lib.sh"
probe_setup
poison=$(probe schedule probe.poison '{}')
victim=$(probe schedule probe.victim '{"n": 1}')
probe run --workers 1 --drain 2>>"$RUNTIME_LOG"
assert_eq "completed,completed" \
  "$(sql "SELECT string_agg(state, ',' ORDER BY id) FROM moontask.tasks WHERE id IN ($poison, $victim)")" \
  "both tasks ran"
assert_eq "env_mt=nil string_mt=false array_mt=false object_mt=false tx_mt=false set_array_mt=false string_index=false tx_index=false gc=false" \
  "$(sql "SELECT note FROM probe_log WHERE task = 'poison'")" "what the poisoning task could reach"
assert_eq "intact" "$(sql "SELECT note FROM probe_log WHERE task = 'victim'")" "what the next task saw"
