# The proxy that checks every request's SigV4 signature with botocore's own
# signer (tests/aws/sigcheck_proxy.py), which the AWS backend's tests put
# between our client and moto: its self-test (tests/aws/test_sigcheck_proxy.py)
# shows that requests boto3 signs check out and that a changed body or
# header, a wrong secret or a missing token are caught, and that --strict
# refuses them. Skipped where python3 lacks boto3 or moto (exit 77).
source "$(dirname "$0")/lib.sh"

rc=0
TMPDIR=$E2E_TMP python3 tests/aws/test_sigcheck_proxy.py >"$E2E_TMP/self-test.log" 2>&1 || rc=$?
if [ "$rc" -eq 77 ]; then
  skip "$(sed -n 's/^SKIPPED: //p' "$E2E_TMP/self-test.log")"
fi
cat "$E2E_TMP/self-test.log"
[ "$rc" -eq 0 ] || fail "tests/aws/test_sigcheck_proxy.py failed (exit $rc)"
