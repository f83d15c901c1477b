#!/usr/bin/env python3
"""Self-test of fire.py, the helper that plays EventBridge Scheduler's part
in the AWS tests.

The expression cases check the times rate() and cron() fire at (steps,
ranges, L, W, #, time zones, daylight saving) without AWS. The firing cases
start a moto of their own (in this process, on 127.0.0.1 and an ephemeral
port), create queues and at/rate/cron schedules in it, run fire.py as the
tests will (its command line, at chosen --now times) and check what
arrives in the queues: how many messages, their bodies with the context
attributes replaced, their FIFO group ids, and the schedules deleted after
completion.

  python3 tests/aws/test_fire.py [-v] [unittest options]

Exits 77 (skipped) when boto3 or moto is not installed, naming what to
install.
"""

import datetime as dt
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from zoneinfo import ZoneInfo

HERE = os.path.dirname(os.path.abspath(__file__))
FIRE = os.path.join(HERE, "fire.py")
sys.path.insert(0, HERE)

try:
    import boto3
    from moto.server import ThreadedMotoServer
except ImportError as e:
    print("SKIPPED: %s; install moto with: pip install 'moto[server]==5.2.1'" % e, flush=True)
    sys.exit(77)

import fire  # noqa: E402 - after the import check

UTC = dt.timezone.utc
ACCOUNT = "123456789012"
ROLE = "arn:aws:iam::%s:role/scheduler" % ACCOUNT
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def utc(text):
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def iso(t):
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Expressions(unittest.TestCase):
    """The times schedules fire at, without AWS."""

    def cron(self, expr, tz, after, until):
        kind, cron = fire.parse_expression(expr)
        self.assertEqual(kind, "cron")
        return [iso(t) for t in cron.times(ZoneInfo(tz), utc(after), utc(until))]

    def test_every_15_minutes_from_the_top_of_the_hour(self):
        self.assertEqual(self.cron("cron(0/15 * * * ? *)", "UTC", "2027-01-01T10:00", "2027-01-01T11:00"),
                         ["2027-01-01T10:15:00Z", "2027-01-01T10:30:00Z",
                          "2027-01-01T10:45:00Z", "2027-01-01T11:00:00Z"])

    def test_weekdays_by_name(self):
        # 2027-01-01 is a Friday.
        self.assertEqual(self.cron("cron(0 12 ? * MON-FRI *)", "UTC", "2027-01-01T00:00", "2027-01-08T00:00"),
                         ["2027-01-01T12:00:00Z", "2027-01-04T12:00:00Z", "2027-01-05T12:00:00Z",
                          "2027-01-06T12:00:00Z", "2027-01-07T12:00:00Z"])

    def test_day_of_week_1_is_sunday(self):
        self.assertEqual(self.cron("cron(0 12 ? * 1 *)", "UTC", "2027-01-01T00:00", "2027-01-08T00:00"),
                         ["2027-01-03T12:00:00Z"])

    def test_hours_range_wraps_past_midnight(self):
        self.assertEqual(self.cron("cron(0 22-1 * * ? *)", "UTC", "2027-01-01T12:00", "2027-01-02T12:00"),
                         ["2027-01-01T22:00:00Z", "2027-01-01T23:00:00Z",
                          "2027-01-02T00:00:00Z", "2027-01-02T01:00:00Z"])

    def test_last_day_of_month(self):
        self.assertEqual(self.cron("cron(0 8 L * ? *)", "UTC", "2027-01-01T00:00", "2027-04-01T00:00"),
                         ["2027-01-31T08:00:00Z", "2027-02-28T08:00:00Z", "2027-03-31T08:00:00Z"])

    def test_last_friday(self):
        self.assertEqual(self.cron("cron(0 8 ? * 6L *)", "UTC", "2027-01-01T00:00", "2027-04-01T00:00"),
                         ["2027-01-29T08:00:00Z", "2027-02-26T08:00:00Z", "2027-03-26T08:00:00Z"])

    def test_first_monday(self):
        self.assertEqual(self.cron("cron(0 8 ? * MON#1 *)", "UTC", "2027-01-01T00:00", "2027-04-01T00:00"),
                         ["2027-01-04T08:00:00Z", "2027-02-01T08:00:00Z", "2027-03-01T08:00:00Z"])

    def test_nearest_weekday_stays_in_its_month(self):
        # 2027-05-15 is a Saturday, 2027-05-01 too: the 14th, and the 3rd
        # rather than April's last day.
        self.assertEqual(self.cron("cron(0 8 15W 5 ? *)", "UTC", "2027-01-01T00:00", "2028-01-01T00:00"),
                         ["2027-05-14T08:00:00Z"])
        self.assertEqual(self.cron("cron(0 8 1W 5 ? *)", "UTC", "2027-01-01T00:00", "2028-01-01T00:00"),
                         ["2027-05-03T08:00:00Z"])
        # The last weekday: 2027-01-31 is a Sunday.
        self.assertEqual(self.cron("cron(0 8 LW 1 ? 2027)", "UTC", "2027-01-01T00:00", "2028-01-01T00:00"),
                         ["2027-01-29T08:00:00Z"])

    def test_year_field(self):
        self.assertEqual(self.cron("cron(0 0 1 1 ? 2028,2030)", "UTC", "2027-01-01T00:00", "2031-01-01T00:00"),
                         ["2028-01-01T00:00:00Z", "2030-01-01T00:00:00Z"])

    def test_time_zone(self):
        # 09:30 in Kolkata (UTC+05:30) is 04:00 UTC.
        self.assertEqual(self.cron("cron(30 9 * * ? *)", "Asia/Kolkata", "2027-01-01T00:00", "2027-01-03T00:00"),
                         ["2027-01-01T04:00:00Z", "2027-01-02T04:00:00Z"])

    def test_daylight_saving_skips_a_time_that_does_not_exist(self):
        # New York springs forward at 02:00 on 2027-03-14: no 02:30 that day.
        self.assertEqual(self.cron("cron(30 2 * * ? *)", "America/New_York", "2027-03-13T00:00", "2027-03-16T00:00"),
                         ["2027-03-13T07:30:00Z", "2027-03-15T06:30:00Z"])

    def test_daylight_saving_fires_a_repeated_time_once(self):
        # New York falls back at 02:00 on 2027-11-07: 01:30 happens twice,
        # it fires at the first (EDT, 05:30 UTC).
        self.assertEqual(self.cron("cron(30 1 * * ? *)", "America/New_York", "2027-11-06T12:00", "2027-11-08T12:00"),
                         ["2027-11-07T05:30:00Z", "2027-11-08T06:30:00Z"])

    def test_rate_days_are_24_hours_across_daylight_saving(self):
        kind, every = fire.parse_expression("rate(1 day)")
        start = utc("2027-03-13T12:00")
        times = fire.rate_times(start, every, start - dt.timedelta(seconds=1), utc("2027-03-15T12:00"))
        self.assertEqual([iso(t) for t in times],
                         ["2027-03-13T12:00:00Z", "2027-03-14T12:00:00Z", "2027-03-15T12:00:00Z"])

    def test_at_is_wall_clock_time_in_its_zone(self):
        kind, when = fire.parse_expression("at(2027-07-01T09:00:00)")
        self.assertEqual(kind, "at")
        self.assertEqual(iso(fire.local_to_utc(when, ZoneInfo("Europe/Berlin"))), "2027-07-01T07:00:00Z")

    def test_expressions_eventbridge_refuses(self):
        for expr in ["cron(0 8 * * * *)",        # neither day field '?'
                     "cron(0 8 ? * ? *)",        # both
                     "cron(0 0 8 * * ? *)",      # seconds: 7 fields
                     "cron(60 8 * * ? *)",
                     "cron(0 8 * FOO ? *)",
                     "rate(0 minutes)", "rate(1 minutes)", "rate(5 minute)", "rate(5 seconds)",
                     "at(2027-01-01 10:00)", "every(5 minutes)"]:
            with self.subTest(expr=expr), self.assertRaises(fire.ExpressionError):
                fire.parse_expression(expr)


class Firing(unittest.TestCase):
    """fire.py's command line against a moto of our own."""

    @classmethod
    def setUpClass(cls):
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        cls.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        cls.server.start()
        cls.endpoint = "http://127.0.0.1:%d" % cls.server.get_host_and_port()[1]
        cls.env = dict(os.environ, AWS_ACCESS_KEY_ID="moontask-test", AWS_SECRET_ACCESS_KEY="moontask-test",
                       AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1")
        kw = dict(endpoint_url=cls.endpoint, region_name="us-east-1",
                  aws_access_key_id="moontask-test", aws_secret_access_key="moontask-test")
        cls.sqs = boto3.client("sqs", **kw)
        cls.scheduler = boto3.client("scheduler", **kw)
        cls.tmp = tempfile.TemporaryDirectory(prefix="test-fire.")
        # A whole hour ahead, so that StartDate is in the future when the
        # schedule is created (moto, like EventBridge, refuses one much in
        # the past) and the times below are round.
        now = dt.datetime.now(UTC)
        cls.t0 = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=2)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.tmp.cleanup()

    def setUp(self):
        # Each case has its own group and queues, named after it.
        self.name = self.id().rsplit(".", 1)[-1].replace("test_", "")[:40].replace("_", "-")
        self.group = self.name
        self.make_group(self.group)
        self.state = os.path.join(self.tmp.name, self.name + ".json")

    def make_group(self, name):
        """A schedule group, emptied after the case so that what it left
        cannot fire in another case's pass over every group."""
        self.scheduler.create_schedule_group(Name=name)

        def empty():
            for s in self.scheduler.list_schedules(GroupName=name)["Schedules"]:
                self.scheduler.delete_schedule(Name=s["Name"], GroupName=name)
        self.addCleanup(empty)

    def queue(self, suffix="", fifo=False, dedup=True):
        name = self.name + suffix + (".fifo" if fifo else "")
        attrs = {"FifoQueue": "true", "ContentBasedDeduplication": "true" if dedup else "false"} if fifo else {}
        url = self.sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
        return url, "arn:aws:sqs:us-east-1:%s:%s" % (ACCOUNT, name)

    def schedule(self, name, expr, target, group=None, **kw):
        target = dict(target, RoleArn=ROLE)
        self.scheduler.create_schedule(Name=name, GroupName=group or self.group, ScheduleExpression=expr,
                                       FlexibleTimeWindow={"Mode": "OFF"}, Target=target, **kw)
        return self.scheduler.get_schedule(Name=name, GroupName=group or self.group)["Arn"]

    def exists(self, name):
        try:
            self.scheduler.get_schedule(Name=name, GroupName=self.group)
            return True
        except self.scheduler.exceptions.ResourceNotFoundException:
            return False

    def fire(self, now, *args, group=True, state=True, expect=0):
        cmd = [sys.executable, FIRE, "--endpoint", self.endpoint, "--now", iso(now)]
        cmd += ["--group", self.group] if group else []
        cmd += ["--state", self.state] if state else []
        p = subprocess.run(cmd + list(args), env=self.env, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, expect, "fire.py exited %d: %s" % (p.returncode, p.stderr))
        return p.stdout.splitlines(), p.stderr

    def drain(self, url):
        """(body, group id) of every message in the queue, deleted."""
        out = []
        while True:
            got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                           MessageSystemAttributeNames=["All"]).get("Messages", [])
            if not got:
                return out
            for m in got:
                out.append((m["Body"], m.get("Attributes", {}).get("MessageGroupId")))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def at(self, t, tz="UTC"):
        return "at(%s)" % t.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M:%S")

    def test_at_fires_once_with_context_attributes_then_is_deleted(self):
        url, arn = self.queue(fifo=True)
        when = self.t0 + dt.timedelta(minutes=2)
        body = ('{"task":42,"at":"<aws.scheduler.scheduled-time>","exec":"<aws.scheduler.execution-id>",'
                '"attempt":<aws.scheduler.attempt-number>,"arn":"<aws.scheduler.schedule-arn>"}')
        sched = self.schedule("task-42", self.at(when, "America/New_York"),
                              {"Arn": arn, "Input": body, "SqsParameters": {"MessageGroupId": "tasks"}},
                              ScheduleExpressionTimezone="America/New_York", ActionAfterCompletion="DELETE")

        lines, _ = self.fire(when - dt.timedelta(minutes=1))
        self.assertEqual(lines, [])
        self.assertEqual(self.drain(url), [])
        self.assertTrue(self.exists("task-42"))

        lines, err = self.fire(when + dt.timedelta(minutes=1))
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith(
            "sent schedule=%s/task-42 scheduled_time=%s attempt=1 queue=%s.fifo message_group_id=tasks message_id="
            % (self.group, iso(when), self.name)), lines[0])
        msgs = self.drain(url)
        self.assertEqual(len(msgs), 1)
        got, group_id = json.loads(msgs[0][0]), msgs[0][1]
        self.assertEqual(group_id, "tasks")
        self.assertRegex(got.pop("exec"), UUID)
        self.assertEqual(got, {"task": 42, "at": iso(when), "attempt": 1, "arn": sched})
        self.assertFalse(self.exists("task-42"))
        self.assertIn("deleted schedule=%s/task-42" % self.group, err)

        lines, _ = self.fire(when + dt.timedelta(minutes=5))
        self.assertEqual(lines, [])

    def test_at_without_delete_fires_once_per_state(self):
        url, arn = self.queue()
        when = self.t0 + dt.timedelta(minutes=3)
        self.schedule("once", self.at(when), {"Arn": arn, "Input": "once <aws.scheduler.scheduled-time>"})
        self.assertEqual(len(self.fire(when)[0]), 1)  # due at its very time
        self.assertEqual(self.fire(when + dt.timedelta(hours=1))[0], [])
        self.assertTrue(self.exists("once"))
        self.assertEqual(self.drain(url), [("once " + iso(when), None)])
        # Without a state file a run knows nothing of the earlier ones.
        self.assertEqual(len(self.fire(when + dt.timedelta(hours=1), state=False)[0]), 1)
        self.drain(url)
        # Given another time, it fires at that time.
        later = when + dt.timedelta(hours=2)
        self.scheduler.update_schedule(Name="once", GroupName=self.group, ScheduleExpression=self.at(later),
                                       FlexibleTimeWindow={"Mode": "OFF"},
                                       Target={"Arn": arn, "RoleArn": ROLE, "Input": "once <aws.scheduler.scheduled-time>"})
        self.assertEqual(self.fire(later - dt.timedelta(minutes=1))[0], [])
        self.assertEqual(len(self.fire(later)[0]), 1)
        self.assertEqual(self.drain(url), [("once " + iso(later), None)])

    def test_rate_fires_every_time_since_the_last_firing(self):
        url, arn = self.queue()
        self.schedule("tick", "rate(5 minutes)", {"Arn": arn, "Input": "tick <aws.scheduler.scheduled-time>"},
                      StartDate=self.t0)
        self.assertEqual(self.fire(self.t0 - dt.timedelta(minutes=1))[0], [])
        self.assertEqual(len(self.fire(self.t0 + dt.timedelta(minutes=11))[0]), 3)
        self.assertEqual(len(self.fire(self.t0 + dt.timedelta(minutes=16))[0]), 1)
        self.assertEqual(self.fire(self.t0 + dt.timedelta(minutes=16))[0], [])
        want = ["tick " + iso(self.t0 + dt.timedelta(minutes=m)) for m in (0, 5, 10, 15)]
        self.assertEqual(sorted(b for b, _ in self.drain(url)), want)

    def test_cron_in_a_time_zone_into_a_fifo_queue(self):
        url, arn = self.queue(fifo=True)
        self.schedule("daily", "cron(30 9 * * ? *)",
                      {"Arn": arn, "Input": '{"fire":"<aws.scheduler.scheduled-time>"}',
                       "SqsParameters": {"MessageGroupId": "daily"}},
                      ScheduleExpressionTimezone="Asia/Kolkata", StartDate=self.t0)
        now = self.t0 + dt.timedelta(days=3)
        lines, _ = self.fire(now)
        # 09:30 in Kolkata is 04:00 UTC, counted here day by day.
        want = []
        day = self.t0.replace(hour=4)
        while day <= now:
            if day >= self.t0:
                want.append(iso(day))
            day += dt.timedelta(days=1)
        self.assertEqual(len(lines), len(want), lines)
        msgs = self.drain(url)
        self.assertEqual([json.loads(b)["fire"] for b, _ in msgs], want)
        self.assertEqual({g for _, g in msgs}, {"daily"})

    def test_disabled_schedules_never_fire(self):
        url, arn = self.queue()
        self.schedule("off-at", self.at(self.t0), {"Arn": arn, "Input": "x"}, State="DISABLED")
        self.schedule("off-rate", "rate(1 minute)", {"Arn": arn, "Input": "y"}, State="DISABLED",
                      StartDate=self.t0)
        lines, err = self.fire(self.t0 + dt.timedelta(minutes=30))
        self.assertEqual(lines, [])
        self.assertEqual(self.drain(url), [])
        self.assertIn("disabled", err)

    def test_start_and_end_dates_then_delete(self):
        url, arn = self.queue()
        self.schedule("bounded", "rate(10 minutes)", {"Arn": arn, "Input": "<aws.scheduler.scheduled-time>"},
                      StartDate=self.t0, EndDate=self.t0 + dt.timedelta(minutes=25), ActionAfterCompletion="DELETE")
        lines, _ = self.fire(self.t0 + dt.timedelta(hours=1))
        self.assertEqual(len(lines), 3, lines)
        self.assertEqual(sorted(b for b, _ in self.drain(url)),
                         [iso(self.t0 + dt.timedelta(minutes=m)) for m in (0, 10, 20)])
        self.assertFalse(self.exists("bounded"))

    def test_group_option_limits_the_schedules_fired(self):
        url, arn = self.queue()
        other = self.group + "-other"
        self.make_group(other)
        self.schedule("mine", self.at(self.t0), {"Arn": arn, "Input": "mine"})
        self.schedule("theirs", self.at(self.t0), {"Arn": arn, "Input": "theirs"}, group=other)
        lines, _ = self.fire(self.t0)
        self.assertEqual(len(lines), 1)
        self.assertEqual(self.drain(url), [("mine", None)])
        # Without --group, every group; "mine" has fired already.
        lines, _ = self.fire(self.t0, group=False)
        self.assertIn("theirs", [b for b, _ in self.drain(url)])
        self.assertNotIn("mine", " ".join(lines))

    def test_a_refused_send_is_retried_with_the_next_attempt_number(self):
        # A FIFO queue without content-based deduplication refuses what
        # EventBridge sends (no deduplication id), until it is fixed.
        url, arn = self.queue(fifo=True, dedup=False)
        self.schedule("retry", self.at(self.t0), {"Arn": arn, "Input": "attempt <aws.scheduler.attempt-number>",
                                                   "SqsParameters": {"MessageGroupId": "g"}},
                      ActionAfterCompletion="DELETE")
        lines, err = self.fire(self.t0, expect=1)
        self.assertEqual(lines, [])
        self.assertIn("ContentBasedDeduplication", err)
        self.fire(self.t0 + dt.timedelta(minutes=1), expect=1)
        self.assertTrue(self.exists("retry"))
        self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"ContentBasedDeduplication": "true"})
        lines, _ = self.fire(self.t0 + dt.timedelta(minutes=2))
        self.assertEqual(len(lines), 1)
        self.assertIn(" attempt=3 ", lines[0])
        self.assertEqual(self.drain(url), [("attempt 3", "g")])
        self.assertFalse(self.exists("retry"))

    def test_dead_letter_queue_after_the_last_retry(self):
        dlq_url, dlq_arn = self.queue("-dlq")
        missing = "arn:aws:sqs:us-east-1:%s:%s-missing" % (ACCOUNT, self.name)
        self.schedule("doomed", self.at(self.t0), {
            "Arn": missing, "Input": "lost <aws.scheduler.attempt-number>",
            "RetryPolicy": {"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 3600},
            "DeadLetterConfig": {"Arn": dlq_arn}})
        self.fire(self.t0, expect=1)
        self.fire(self.t0 + dt.timedelta(minutes=1), expect=1)
        _, err = self.fire(self.t0 + dt.timedelta(minutes=2))
        self.assertIn("dead-lettered schedule=%s/doomed" % self.group, err)
        self.assertEqual(self.drain(dlq_url), [("lost 2", None)])

    def test_universal_sqs_target_and_default_notification(self):
        url, arn = self.queue()
        request = json.dumps({"QueueUrl": url, "MessageBody": "universal <aws.scheduler.scheduled-time>"})
        self.schedule("universal", self.at(self.t0), {"Arn": fire.UNIVERSAL_SQS, "Input": request})
        sched = self.schedule("bare", self.at(self.t0), {"Arn": arn})
        self.assertEqual(len(self.fire(self.t0)[0]), 2)
        bodies = sorted(b for b, _ in self.drain(url))
        self.assertEqual(len(bodies), 2)
        self.assertIn("universal " + iso(self.t0), bodies)
        note = json.loads(next(b for b in bodies if b.startswith("{")))
        self.assertEqual((note["source"], note["resources"], note["time"]), ("aws.scheduler", [sched], iso(self.t0)))

    def test_loop_fires_on_the_real_clock_until_sigterm(self):
        url, arn = self.queue()
        past = dt.datetime.now(UTC) - dt.timedelta(minutes=1)
        self.schedule("now", self.at(past), {"Arn": arn, "Input": "looped"}, ActionAfterCompletion="DELETE")
        p = subprocess.Popen([sys.executable, FIRE, "--endpoint", self.endpoint, "--group", self.group,
                              "--loop", "0.2"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 20
            msgs = []
            while not msgs and time.monotonic() < deadline:
                msgs = self.drain(url)
                time.sleep(0.1)
            self.assertEqual(msgs, [("looped", None)])
        finally:
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(len(out.splitlines()), 1, out)
        self.assertFalse(self.exists("now"))


if __name__ == "__main__":
    unittest.main()
