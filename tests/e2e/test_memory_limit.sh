# A task that allocates past its memory_limit fails with a clear reason, its
# worker survives, and the memory is given back: the next run of the same
# file finds its globals gone and room to work.
source "$(dirname "$0")/lib.sh"
probe_setup
hog=$(probe schedule probe.hog '{}')
modest=$(probe schedule probe.hog '{"modest": true}')
probe run --workers 1 --drain 2>>"$RUNTIME_LOG"
assert_eq "failed|1" "$(sql "SELECT state, attempts FROM moontask.tasks WHERE id = $hog")" "the hog"
assert_contains "$(sql "SELECT last_error FROM moontask.tasks WHERE id = $hog")" "memory limit of 16 MiB exceeded" "the hog's error"
assert_eq 0 "$(sql "SELECT count(*) FROM probe_log WHERE note = 'survived the limit'")" "the hog caught its limit"
assert_eq "completed" "$(sql "SELECT state FROM moontask.tasks WHERE id = $modest")" "the next run, on the same worker"
assert_eq 1 "$(sql "SELECT count(*) FROM probe_log WHERE note = 'modest ok'")" "modest run"

# A payload too big for the task's memory limit fails that task when it is
# decoded, instead of taking the runtime down: anyone who may schedule
# could otherwise send such a payload.
probe_setup
big=$(sql "SELECT moontask.schedule('probe.tiny', jsonb_build_object('blob', repeat('x', 8 * 1024 * 1024)))")
after=$(probe schedule probe.noop '{"n": 2}')
probe run --workers 1 --drain 2>>"$RUNTIME_LOG"
assert_eq "failed|1" "$(sql "SELECT state, attempts FROM moontask.tasks WHERE id = $big")" "the oversized payload"
assert_contains "$(sql "SELECT last_error FROM moontask.tasks WHERE id = $big")" "memory limit of 4 MiB exceeded" "its error"
assert_eq "completed" "$(sql "SELECT state FROM moontask.tasks WHERE id = $after")" "the task after it"
