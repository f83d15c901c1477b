#!/usr/bin/env python3
"""Self-test of sigcheck_proxy.py, the proxy that checks every request's
SigV4 signature against botocore's signer on its way to moto.

It starts a moto of its own (in this process, on 127.0.0.1 and an
ephemeral port) and the proxy in front of it, then shows that:
  - requests boto3 itself signs (SQS's JSON protocol, EventBridge
    Scheduler's REST one, STS's query one, with query strings, path
    parameters and non-ASCII bodies) all check out, each named by its
    operation;
  - the proxy signs at the request's X-Amz-Date, not at its own clock;
  - a body changed after signing, a header changed after signing, a wrong
    secret, a missing session token and an unsigned request are caught;
  - with --strict, a bad request gets 403 SignatureDoesNotMatch (which
    boto3 reads as such) and never reaches moto;
  - with --throttle, the first N requests of each operation (OP=N: of
    OP) get AWS's throttling error in their protocol (SQS's JSON 400,
    Scheduler's REST 429, STS's query 400), which boto3 reads as such and
    retries, are logged as throttled and never reach moto.

  python3 tests/aws/test_sigcheck_proxy.py [-v] [unittest options]

Exits 77 (skipped) when boto3 or moto is not installed.
"""

import datetime as dt
import hashlib
import http.client
import json
import logging
import os
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
PROXY = os.path.join(HERE, "sigcheck_proxy.py")

try:
    import boto3
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials
    from botocore.exceptions import ClientError
    from moto.server import ThreadedMotoServer
except ImportError as e:
    print("SKIPPED: %s; install moto with: pip install 'moto[server]==5.2.1'" % e, flush=True)
    sys.exit(77)

KEY, SECRET, TOKEN = "AKIDSIGCHECKTEST", "sigcheck-secret", "sigcheck-session-token"


class Proxy:
    """sigcheck_proxy.py in front of moto, stopped by its PID."""

    def __init__(self, upstream, folder, *args):
        self.log = os.path.join(folder, "checks-%d.jsonl" % id(self))
        self.proc = subprocess.Popen(
            [sys.executable, PROXY, "--upstream", upstream, "--log", self.log,
             "--access-key", KEY, "--secret-key", SECRET] + list(args),
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("PORT "), "the proxy did not start: %r" % line
        self.url = "http://127.0.0.1:%d" % int(line.split()[1])
        self.seen = 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()

    def checks(self):
        """The checks logged since the last call."""
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            lines = f.read().splitlines()
        new, self.seen = lines[self.seen:], len(lines)
        return [json.loads(x) for x in new]


class SigCheckProxy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        cls.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        cls.moto.start()
        cls.upstream = "http://127.0.0.1:%d" % cls.moto.get_host_and_port()[1]
        cls.tmp = tempfile.TemporaryDirectory(prefix="test-sigcheck.")
        cls.proxy = Proxy(cls.upstream, cls.tmp.name)
        cls.strict = Proxy(cls.upstream, cls.tmp.name, "--strict")

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        cls.strict.stop()
        cls.moto.stop()
        cls.tmp.cleanup()

    def setUp(self):
        self.proxy.checks()
        self.strict.checks()

    def client(self, service, url=None, secret=SECRET, token=None, attempts=None):
        config = Config(retries={"mode": "standard", "total_max_attempts": attempts}) if attempts else None
        return boto3.client(service, endpoint_url=url or self.proxy.url, region_name="us-east-1",
                            aws_access_key_id=KEY, aws_secret_access_key=secret, aws_session_token=token,
                            config=config)

    def assert_all_ok(self, checks, ops):
        self.assertEqual([c["op"] for c in checks], ops)
        for c in checks:
            self.assertTrue(c["ok"], c)
            self.assertEqual(c["expected"], c["got"])
            self.assertRegex(c["got"], "^[0-9a-f]{64}$")

    def test_requests_boto3_signs_all_check_out(self):
        sqs, scheduler, sts = self.client("sqs"), self.client("scheduler"), self.client("sts")
        url = sqs.create_queue(QueueName="sig-ok", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        self.assertTrue(url.startswith(self.proxy.url), url)  # moto answers with the proxy's address
        sqs.send_message(QueueUrl=url, MessageBody='{"task": 1, "note": "d\u00e9j\u00e0 vu \u2603 & = + %"}')
        got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)["Messages"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
        sqs.list_queues(QueueNamePrefix="sig")
        scheduler.create_schedule_group(Name="sig-group")
        scheduler.create_schedule(
            Name="task-1", GroupName="sig-group", ScheduleExpression="at(2030-01-01T00:00:00)",
            FlexibleTimeWindow={"Mode": "OFF"}, ActionAfterCompletion="DELETE",
            Target={"Arn": "arn:aws:sqs:us-east-1:123456789012:sig-ok", "RoleArn": "arn:aws:iam::123456789012:role/r",
                    "Input": '{"task_id": 1}'})
        scheduler.get_schedule(Name="task-1", GroupName="sig-group")
        scheduler.list_schedules(GroupName="sig-group", NamePrefix="task", MaxResults=5)
        scheduler.delete_schedule(Name="task-1", GroupName="sig-group")
        sts.get_caller_identity()
        self.assert_all_ok(self.proxy.checks(), [
            "CreateQueue", "SendMessage", "ReceiveMessage", "DeleteMessage", "ListQueues",
            "CreateScheduleGroup", "CreateSchedule", "GetSchedule", "ListSchedules", "DeleteSchedule",
            "GetCallerIdentity"])

    def test_signs_at_the_requests_date_not_its_own_clock(self):
        then = dt.datetime(2020, 2, 29, 23, 59, 58)
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=then):
            self.client("sqs").list_queues()
        [c] = self.proxy.checks()
        self.assertTrue(c["ok"], c)

    def test_session_token(self):
        proxy = Proxy(self.upstream, self.tmp.name, "--session-token", TOKEN)
        try:
            self.client("sqs", url=proxy.url, token=TOKEN).list_queues()
            self.client("sqs", url=proxy.url).list_queues()
            with_token, without = proxy.checks()
        finally:
            proxy.stop()
        self.assertTrue(with_token["ok"], with_token)
        self.assertFalse(without["ok"])
        self.assertIn("signed headers", without["reason"])

    def signed(self, body=b'{"QueueNamePrefix": "sig"}'):
        """A ListQueues request to the proxy, signed by botocore."""
        request = AWSRequest(method="POST", url=self.proxy.url + "/", data=body, headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.ListQueues"})
        botocore.auth.SigV4Auth(Credentials(KEY, SECRET), "sqs", "us-east-1").add_auth(request)
        return dict(request.headers.items()), body

    def send(self, url, headers, body):
        host, port = url.split("//")[1].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("POST", "/", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, data

    def test_untouched_request_checks_out(self):
        headers, body = self.signed()
        self.assertEqual(self.send(self.proxy.url, headers, body)[0], 200)
        [c] = self.proxy.checks()
        self.assertTrue(c["ok"], c)
        self.assertEqual(c["op"], "ListQueues")

    def test_tampered_body_is_caught(self):
        headers, body = self.signed()
        status, _ = self.send(self.proxy.url, headers, body.replace(b"sig", b"six"))
        self.assertEqual(status, 200)  # forwarded all the same
        [c] = self.proxy.checks()
        self.assertFalse(c["ok"], c)
        self.assertNotEqual(c["expected"], c["got"])
        self.assertEqual(c["reason"], "signature mismatch")

    def test_body_that_is_not_its_signed_hash_is_caught(self):
        # botocore takes a signed X-Amz-Content-SHA256 for the body's hash
        # without looking at the body; the proxy looks.
        body = b'{"QueueNamePrefix": "sig"}'
        request = AWSRequest(method="POST", url=self.proxy.url + "/", data=body, headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.ListQueues",
            "X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
        botocore.auth.SigV4Auth(Credentials(KEY, SECRET), "sqs", "us-east-1").add_auth(request)
        headers = dict(request.headers.items())
        self.send(self.proxy.url, headers, body)
        self.send(self.proxy.url, headers, body.replace(b"sig", b"six"))
        good, bad = self.proxy.checks()
        self.assertTrue(good["ok"], good)
        self.assertFalse(bad["ok"], bad)
        self.assertIn("X-Amz-Content-SHA256", bad["reason"])

    def test_tampered_signed_header_is_caught(self):
        headers, body = self.signed()
        headers["X-Amz-Target"] = "AmazonSQS.PurgeQueue"
        self.send(self.proxy.url, headers, body)
        [c] = self.proxy.checks()
        self.assertFalse(c["ok"], c)
        self.assertEqual(c["op"], "PurgeQueue")

    def test_unsigned_request_is_caught(self):
        headers, body = self.signed()
        del headers["Authorization"]
        self.send(self.proxy.url, headers, body)
        [c] = self.proxy.checks()
        self.assertFalse(c["ok"], c)
        self.assertIn("no SigV4 Authorization", c["reason"])

    def test_wrong_secret_is_caught_and_forwarded(self):
        self.client("sqs", secret="not-the-secret").create_queue(QueueName="sig-wrong-secret")
        [c] = self.proxy.checks()
        self.assertFalse(c["ok"], c)
        self.assertEqual(c["op"], "CreateQueue")
        self.assertEqual(c["reason"], "signature mismatch")
        self.assertIn("sig-wrong-secret", str(self.client("sqs", url=self.upstream).list_queues()))

    def test_strict_refuses_a_bad_signature_without_forwarding(self):
        for service, call in [
                ("sqs", lambda c: c.create_queue(QueueName="sig-strict-refused")),
                ("scheduler", lambda c: c.create_schedule_group(Name="sig-strict-refused")),
                ("sts", lambda c: c.get_caller_identity())]:
            with self.subTest(service=service):
                with self.assertRaises(ClientError) as e:
                    call(self.client(service, url=self.strict.url, secret="not-the-secret"))
                self.assertEqual(e.exception.response["Error"]["Code"], "SignatureDoesNotMatch")
                self.assertEqual(e.exception.response["ResponseMetadata"]["HTTPStatusCode"], 403)
        self.assertNotIn("sig-strict-refused", str(self.client("sqs", url=self.upstream).list_queues()))
        groups = self.client("scheduler", url=self.upstream).list_schedule_groups()["ScheduleGroups"]
        self.assertNotIn("sig-strict-refused", [g["Name"] for g in groups])
        self.assertEqual([c["ok"] for c in self.strict.checks()], [False, False, False])
        # A good signature goes through.
        self.client("sqs", url=self.strict.url).create_queue(QueueName="sig-strict-ok")
        self.assertIn("sig-strict-ok", str(self.client("sqs", url=self.upstream).list_queues()))
        self.assert_all_ok(self.strict.checks(), ["CreateQueue"])

    def test_throttle_answers_the_first_requests_of_each_operation(self):
        proxy = Proxy(self.upstream, self.tmp.name, "--throttle", "2", "--throttle", "ListSchedules=1",
                      "--throttle", "GetCallerIdentity=0")
        try:
            # One attempt each: boto3 must see what the proxy answered.
            sqs = self.client("sqs", url=proxy.url, attempts=1)
            scheduler = self.client("scheduler", url=proxy.url, attempts=1)
            sts = self.client("sts", url=proxy.url, attempts=1)
            for call, status in [(lambda: sqs.create_queue(QueueName="sig-throttled"), 400),
                                 (lambda: scheduler.create_schedule_group(Name="sig-throttled"), 429),
                                 (lambda: self.client("sts", url=proxy.url, attempts=1).get_session_token(), 400)]:
                for _ in range(2):
                    with self.assertRaises(ClientError) as e:
                        call()
                    err = e.exception.response
                    self.assertIn(err["Error"]["Code"], ("ThrottlingException", "Throttling"), err)
                    self.assertEqual(err["Error"]["Message"], "Rate exceeded")
                    self.assertEqual(err["ResponseMetadata"]["HTTPStatusCode"], status)
            # The throttled requests never reached moto.
            self.assertNotIn("sig-throttled", str(self.client("sqs", url=self.upstream).list_queues()))
            groups = self.client("scheduler", url=self.upstream).list_schedule_groups()["ScheduleGroups"]
            self.assertNotIn("sig-throttled", [g["Name"] for g in groups])
            # The third request of each goes through; so do those of an
            # operation spared (=0), and an OP=N overrides the plain N.
            url = sqs.create_queue(QueueName="sig-throttled")["QueueUrl"]
            scheduler.create_schedule_group(Name="sig-throttled")
            sts.get_caller_identity()
            with self.assertRaises(ClientError):
                scheduler.list_schedules(GroupName="sig-throttled")
            scheduler.list_schedules(GroupName="sig-throttled")
            checks = proxy.checks()
            # An SDK that retries gets through the first N on its own.
            retrying = self.client("sqs", url=proxy.url, attempts=3)
            retrying.send_message(QueueUrl=url, MessageBody="after two throttles")
            got = self.client("sqs", url=self.upstream).receive_message(QueueUrl=url, WaitTimeSeconds=0)
            self.assertEqual([m["Body"] for m in got["Messages"]], ["after two throttles"])
            sends = proxy.checks()
        finally:
            proxy.stop()
        self.assertEqual([(c["op"], c.get("throttled", False)) for c in checks], [
            ("CreateQueue", True), ("CreateQueue", True),
            ("CreateScheduleGroup", True), ("CreateScheduleGroup", True),
            ("GetSessionToken", True), ("GetSessionToken", True),
            ("CreateQueue", False), ("CreateScheduleGroup", False), ("GetCallerIdentity", False),
            ("ListSchedules", True), ("ListSchedules", False)])
        self.assertEqual([(c["op"], c.get("throttled", False)) for c in sends],
                         [("SendMessage", True), ("SendMessage", True), ("SendMessage", False)])
        for c in checks + sends:
            self.assertTrue(c["ok"], c)  # the signature is checked all the same

    def test_keeps_client_connections_alive(self):
        headers, body = self.signed()
        host, port = self.proxy.url.split("//")[1].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        for _ in range(3):
            conn.request("POST", "/", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 200)
        conn.close()
        self.assertEqual([c["ok"] for c in self.proxy.checks()], [True, True, True])


if __name__ == "__main__":
    unittest.main()
