# The helper that plays EventBridge Scheduler's part in the AWS tests
# (tests/aws/fire.py) fires what EventBridge would, when it would: its
# self-test (tests/aws/test_fire.py) creates a queue and at/rate/cron
# schedules in a moto of its own, runs the helper at chosen times, and
# checks the messages that arrive (count, bodies with the context attributes
# replaced, FIFO group ids) and the schedules deleted after completion.
# Skipped where python3 lacks boto3 or moto (the self-test exits 77).
source "$(dirname "$0")/lib.sh"

rc=0
TMPDIR=$E2E_TMP python3 tests/aws/test_fire.py >"$E2E_TMP/self-test.log" 2>&1 || rc=$?
if [ "$rc" -eq 77 ]; then
  skip "$(sed -n 's/^SKIPPED: //p' "$E2E_TMP/self-test.log")"
fi
cat "$E2E_TMP/self-test.log"
[ "$rc" -eq 0 ] || fail "tests/aws/test_fire.py failed (exit $rc)"
