#!/usr/bin/env python3
"""Plays EventBridge Scheduler's part against moto, for the AWS tests.

moto stores schedules but never fires them. This helper does: for every
enabled schedule of a group (or of every group) that is due at "now", it
sends the schedule's Target.Input to the target SQS queue the way
EventBridge Scheduler would, and prints one line per message sent:

  sent schedule=GROUP/NAME scheduled_time=2027-01-01T10:00:00Z attempt=1 \
       queue=NAME message_group_id=G|- message_id=ID

  fire.py --endpoint URL [--group G] [--now ISO8601] [--state FILE]
          [--once | --loop SECONDS]

--endpoint defaults to $MT_TEST_AWS_ENDPOINT; --now to the real clock (an
ISO 8601 time; without an offset it is UTC); --once is the default. With
--loop, it fires what is due every SECONDS until SIGINT or SIGTERM, "now"
advancing with the real clock from --now. The region is $AWS_REGION or
$AWS_DEFAULT_REGION (us-east-1 by default); the credentials are the SDK's
usual ones, or dummy ones where there are none (moto accepts any).

What it does as EventBridge does:
  - at(yyyy-mm-ddThh:mm:ss), in ScheduleExpressionTimezone, fires once when
    its time has come; then, with ActionAfterCompletion DELETE, the
    schedule is deleted. StartDate and EndDate do not apply to it.
  - rate(N minutes|hours|days) fires at StartDate (or, without one, at the
    schedule's CreationDate) and every N units after; a day is 24 hours.
  - cron(minutes hours day-of-month month day-of-week year) fires at the
    start of each matching minute of ScheduleExpressionTimezone, with
    EventBridge's syntax (names, ranges, steps, lists, ?, L, W, #;
    day-of-week 1-7 is SUN-SAT). A local time that daylight saving skips
    does not fire; one it repeats fires once, the first time.
  - A recurring schedule fires only at times from StartDate (or its
    creation) and before EndDate; once past EndDate, ActionAfterCompletion
    DELETE deletes it.
  - A disabled schedule never fires: the times that fall due while it is
    seen disabled are dropped, not caught up when it is enabled again.
  - Input has <aws.scheduler.scheduled-time> (UTC, to the second),
    <aws.scheduler.execution-id> (a UUID derived from the schedule, the
    scheduled time and the attempt), <aws.scheduler.attempt-number> and
    <aws.scheduler.schedule-arn> replaced. Without Input, a JSON
    notification in the style of EventBridge's default one is sent.
  - A FIFO queue gets SqsParameters.MessageGroupId and no deduplication id:
    EventBridge requires the queue to have content-based deduplication, and
    SQS refuses the message otherwise, as it would EventBridge's.
  - A send that fails is tried again on the next pass with the attempt
    number raised, until Target.RetryPolicy's MaximumRetryAttempts or
    MaximumEventAgeInSeconds runs out; then the event goes to
    DeadLetterConfig's queue if there is one, or is dropped.
  - Targets: an SQS queue's ARN (templated target), or the universal target
    arn:aws:scheduler:::aws-sdk:sqs:sendMessage, whose Input is the
    SendMessage request.

Unlike EventBridge, it fires nothing until it is run, and then fires every
time that fell due since the last firing it recorded, late.

State: what has fired is kept, per schedule ARN and creation date, in the
JSON file given with --state (created if missing, rewritten atomically
after each pass), or in memory for the life of the process without one. So
a single --once run without --state knows nothing of earlier runs: it fires
each recurring schedule's times from its start again, and an at() schedule
that is not deleted after firing fires again. An at() schedule updated to
another time fires again, at that time. The schedules themselves are never
modified by the helper (their Description is left alone) except deleted.

Other notes (deleted schedules, failures, drops) go to stderr. Exit status:
0, or 1 when something could not be fired or AWS could not be reached (in
--loop mode only SIGINT/SIGTERM end it, with 0), 2 for bad arguments, 3
when boto3 is not installed.
"""

import argparse
import calendar
import datetime as dt
import json
import os
import re
import signal
import sys
import tempfile
import time
import uuid
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

try:
    import boto3
    import botocore.config
except ImportError:
    print("fire.py needs boto3 (pip install boto3)", file=sys.stderr)
    sys.exit(3)

UTC = dt.timezone.utc
UNIVERSAL_SQS = "arn:aws:scheduler:::aws-sdk:sqs:sendMessage"
# A safety stop: a schedule firing this often in one pass is a test gone
# wrong (a rate(1 minute) caught up over a year), not something to send.
MAX_FIRES_PER_PASS = 10000


class ExpressionError(ValueError):
    """A schedule expression EventBridge would not accept."""


# -- schedule expressions ---------------------------------------------------

MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
DAYS = {d: i + 1 for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}


def aws_weekday(day):
    """EventBridge's day of the week of a date: 1 is Sunday, 7 Saturday."""
    return (day.weekday() + 1) % 7 + 1


def parse_expression(expr):
    """("at", naive local datetime) | ("rate", timedelta) | ("cron", Cron)."""
    m = re.fullmatch(r"\s*(at|rate|cron)\((.*)\)\s*", expr or "")
    if not m:
        raise ExpressionError("not at(...), rate(...) or cron(...): %r" % expr)
    kind, body = m.group(1), m.group(2).strip()
    if kind == "at":
        try:
            return kind, dt.datetime.strptime(body, "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            raise ExpressionError("at() wants yyyy-mm-ddThh:mm:ss: %r" % expr) from None
    if kind == "rate":
        m = re.fullmatch(r"(\d+)\s+(minute|minutes|hour|hours|day|days)", body)
        if not m or int(m.group(1)) < 1:
            raise ExpressionError("rate() wants a positive number and minutes, hours or days: %r" % expr)
        n, unit = int(m.group(1)), m.group(2)
        if (n == 1) != (not unit.endswith("s")):
            raise ExpressionError("rate() wants the singular unit for 1, the plural otherwise: %r" % expr)
        return kind, dt.timedelta(**{unit.rstrip("s") + "s": n})
    return kind, Cron(body)


class Cron:
    """An EventBridge cron expression: minutes hours day-of-month month
    day-of-week year, one of the two day fields '?'."""

    def __init__(self, body):
        fields = body.split()
        if len(fields) != 6:
            raise ExpressionError("cron() wants 6 fields, got %d: %r" % (len(fields), body))
        mi, ho, dom, mo, dow, yr = fields
        self.text = body
        self.minutes = self._set(mi, 0, 59)
        self.hours = self._set(ho, 0, 23)
        self.months = self._set(mo, 1, 12, MONTHS)
        self.years = self._set(yr, 1970, 2199)
        if (dom == "?") == (dow == "?"):
            raise ExpressionError("cron() wants '?' in exactly one of day-of-month and day-of-week: %r" % body)
        self.dom = None if dom == "?" else self._day_of_month(dom)
        self.dow = None if dow == "?" else self._day_of_week(dow)

    @staticmethod
    def _value(text, lo, hi, names):
        v = names.get(text.upper()) if names else None
        if v is None:
            if not text.isdigit():
                raise ExpressionError("not a value: %r" % text)
            v = int(text)
        if not lo <= v <= hi:
            raise ExpressionError("%d is outside %d-%d" % (v, lo, hi))
        return v

    @classmethod
    def _set(cls, field, lo, hi, names=None):
        """The values a field of lists, ranges and steps allows."""
        out = set()
        for item in field.split(","):
            rng, _, step = item.partition("/")
            step = cls._value(step, 1, hi - lo + 1, None) if step else 1
            if rng == "*":
                a, b = lo, hi
            elif "-" in rng:
                a, b = (cls._value(x, lo, hi, names) for x in rng.split("-", 1))
            else:
                a = cls._value(rng, lo, hi, names)
                b = hi if item.count("/") else a
            # A range may wrap (FRI-MON, 22-2): count through the top.
            span = (b - a) % (hi - lo + 1)
            out.update(lo + (a - lo + i) % (hi - lo + 1) for i in range(0, span + 1, step))
        return out

    def _day_of_month(self, field):
        if field == "L":
            return ("last",)
        if field == "LW":
            return ("last_weekday",)
        m = re.fullmatch(r"(\d+)W", field)
        if m:
            return ("nearest_weekday", self._value(m.group(1), 1, 31, None))
        return ("set", self._set(field, 1, 31))

    def _day_of_week(self, field):
        if field == "L":
            return ("set", {7})
        m = re.fullmatch(r"(\w+)L", field)
        if m:
            return ("last", self._value(m.group(1), 1, 7, DAYS))
        m = re.fullmatch(r"(\w+)#([1-5])", field)
        if m:
            return ("nth", self._value(m.group(1), 1, 7, DAYS), int(m.group(2)))
        return ("set", self._set(field, 1, 7, DAYS))

    def matches_day(self, day):
        if day.year not in self.years or day.month not in self.months:
            return False
        last = calendar.monthrange(day.year, day.month)[1]
        if self.dom is not None:
            kind = self.dom[0]
            if kind == "set":
                return day.day in self.dom[1]
            if kind == "last":
                return day.day == last
            target = last if kind == "last_weekday" else self.dom[1]
            if target > last:
                return False
            # The weekday nearest the target day, within its month.
            wd = dt.date(day.year, day.month, target).weekday()
            if wd == 5:
                target = target - 1 if target > 1 else target + 2
            elif wd == 6:
                target = target + 1 if target < last else target - 2
            return day.day == target
        kind, weekday = self.dow[0], aws_weekday(day)
        if kind == "set":
            return weekday in self.dow[1]
        if weekday != self.dow[1]:
            return False
        if kind == "last":
            return day.day + 7 > last
        return (day.day - 1) // 7 + 1 == self.dow[2]

    def times(self, tz, after, until):
        """The UTC times in (after, until] this expression fires at in tz."""
        out = []
        day = after.astimezone(tz).date()
        end = until.astimezone(tz).date()
        while day <= end:
            if day.year not in self.years:
                day = dt.date(day.year + 1, 1, 1)
                continue
            if day.month not in self.months:
                day = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
                continue
            if self.matches_day(day):
                for h in sorted(self.hours):
                    for m in sorted(self.minutes):
                        t = local_to_utc(dt.datetime(day.year, day.month, day.day, h, m), tz)
                        if t is not None and after < t <= until:
                            out.append(t)
            day += dt.timedelta(days=1)
        return out


def local_to_utc(naive, tz):
    """The UTC time of a wall-clock time in tz; None where daylight saving
    skips it, the first of the two where it repeats it (fold 0)."""
    t = naive.replace(tzinfo=tz).astimezone(UTC)
    if t.astimezone(tz).replace(tzinfo=None) != naive:
        return None
    return t


def rate_times(start, every, after, until):
    """start + k*every (k >= 0) in (after, until]."""
    k = 0 if after < start else (after - start) // every + 1
    out = []
    t = start + k * every
    while t <= until:
        out.append(t)
        t += every
    return out


def due_times(schedule, tz, after, until):
    """The times in (after, until] a recurring schedule fires at, within
    its StartDate and EndDate."""
    kind, what = parse_expression(schedule["ScheduleExpression"])
    start = schedule.get("StartDate")
    end = schedule.get("EndDate")
    if kind == "rate":
        first = (start or schedule["CreationDate"]).astimezone(UTC).replace(microsecond=0)
        times = rate_times(first, what, after, until)
    else:
        times = what.times(tz, after, until)
    return [t for t in times if (start is None or t >= start) and (end is None or t < end)]


# -- firing -----------------------------------------------------------------


def iso(t):
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text):
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


class Firer:
    def __init__(self, endpoint, region, group, state_file):
        session = boto3.Session()
        kw = {"endpoint_url": endpoint, "config": botocore.config.Config(retries={"max_attempts": 2})}
        if session.get_credentials() is None:
            kw.update(aws_access_key_id="moontask-test", aws_secret_access_key="moontask-test")
        self.session, self.kw = session, kw
        self.scheduler = session.client("scheduler", region_name=region, **kw)
        self.sqs = {}
        self.queue_urls = {}
        self.group = group
        self.state_file = state_file
        self.state = {}
        if state_file and os.path.exists(state_file):
            with open(state_file) as f:
                self.state = json.load(f).get("schedules", {})
        self.failed = False

    def note(self, text):
        print(text, file=sys.stderr, flush=True)

    def fail(self, text):
        self.failed = True
        self.note(text)

    def save(self):
        if not self.state_file:
            return
        folder = os.path.dirname(os.path.abspath(self.state_file))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".fire-state.")
        with os.fdopen(fd, "w") as f:
            json.dump({"schedules": self.state}, f, indent=1, sort_keys=True)
        os.replace(tmp, self.state_file)

    def client_sqs(self, region):
        if region not in self.sqs:
            self.sqs[region] = self.session.client("sqs", region_name=region, **self.kw)
        return self.sqs[region]

    def groups(self):
        if self.group:
            return [self.group]
        pages = self.scheduler.get_paginator("list_schedule_groups").paginate()
        return [g["Name"] for page in pages for g in page["ScheduleGroups"]]

    def run(self, now):
        """One pass: fires what is due at now in every group asked for."""
        seen = set()
        groups = self.groups()
        for group in groups:
            pages = self.scheduler.get_paginator("list_schedules").paginate(GroupName=group)
            for page in pages:
                for summary in page["Schedules"]:
                    seen.add(summary["Arn"])
                    try:
                        self.schedule(summary, now)
                    except self.scheduler.exceptions.ResourceNotFoundException:
                        pass  # deleted meanwhile (the runtime cleans up after itself)
        # Forget schedules that are gone, in the groups looked at.
        for arn in list(self.state):
            if arn not in seen and arn.split("/")[-2] in groups:
                del self.state[arn]
        self.save()

    def schedule(self, summary, now):
        s = self.scheduler.get_schedule(Name=summary["Name"], GroupName=summary["GroupName"])
        arn, label = s["Arn"], "%s/%s" % (s["GroupName"], s["Name"])
        created = s["CreationDate"].astimezone(UTC).isoformat()
        st = self.state.get(arn)
        if st is None or st.get("created") != created:
            st = self.state[arn] = {"created": created}
        # An at() schedule given another time fires again, at that time.
        if st.setdefault("expression", s["ScheduleExpression"]) != s["ScheduleExpression"]:
            st.pop("done", None)
            st["expression"] = s["ScheduleExpression"]
        try:
            kind, what = parse_expression(s["ScheduleExpression"])
            tz = ZoneInfo(s.get("ScheduleExpressionTimezone") or "UTC")
        except (ExpressionError, ZoneInfoNotFoundError, ValueError) as e:
            self.fail("failed schedule=%s: %s" % (label, e))
            return

        # Sends tried before and failed, again or for the last time.
        for t_iso, attempts in sorted(st.get("retry", {}).items()):
            self.retry(s, st, parse_time(t_iso), attempts, now)

        # Only DISABLED stops it: an UpdateSchedule without State leaves
        # moto's State empty, where AWS defaults it to ENABLED.
        if kind == "at":
            if st.get("done"):
                return
            t = local_to_utc(what, tz) or what.replace(tzinfo=tz).astimezone(UTC)
            if t > now:
                return
            st["done"] = True
            if s.get("State") == "DISABLED":
                self.note("dropped schedule=%s scheduled_time=%s: the schedule is disabled" % (label, iso(t)))
                return
            if self.attempt(s, st, t, 1):
                self.complete(s)
            return

        if "last" in st:
            after = parse_time(st["last"])
        else:
            after = max(s["CreationDate"], s.get("StartDate") or s["CreationDate"])
            after = after.astimezone(UTC).replace(microsecond=0) - dt.timedelta(microseconds=1)
        if now <= after:
            return
        times = due_times(s, tz, after, now)
        st["last"] = now.isoformat()
        if s.get("State") == "DISABLED":
            if times:
                self.note("dropped schedule=%s: %d time(s) while disabled" % (label, len(times)))
            return
        if len(times) > MAX_FIRES_PER_PASS:
            self.fail("failed schedule=%s: %d times due at once, more than %d; not sending"
                      % (label, len(times), MAX_FIRES_PER_PASS))
            return
        for t in times:
            self.attempt(s, st, t, 1)
        end = s.get("EndDate")
        if end is not None and now >= end and not st.get("retry"):
            self.complete(s)

    def retry(self, s, st, t, attempts, now):
        policy = s["Target"].get("RetryPolicy") or {}
        max_attempts = policy.get("MaximumRetryAttempts", 185)
        max_age = policy.get("MaximumEventAgeInSeconds", 86400)
        del st["retry"][iso(t)]
        if attempts > max_attempts or (now - t).total_seconds() > max_age:
            self.give_up(s, t, attempts)
        else:
            self.attempt(s, st, t, attempts + 1)
        # An at() schedule is finished once its one time is sent or given up.
        if st.get("done") and not st.get("retry"):
            self.complete(s)

    def give_up(self, s, t, attempts):
        label = "%s/%s" % (s["GroupName"], s["Name"])
        dlq = (s["Target"].get("DeadLetterConfig") or {}).get("Arn")
        if dlq:
            try:
                self.send_to_queue(dlq, self.body(s, t, attempts), None)
                self.note("dead-lettered schedule=%s scheduled_time=%s after %d attempt(s)" % (label, iso(t), attempts))
                return
            except Exception as e:  # noqa: BLE001 - any failure is reported
                self.fail("failed schedule=%s: its dead-letter queue: %s" % (label, e))
        self.note("dropped schedule=%s scheduled_time=%s after %d attempt(s)" % (label, iso(t), attempts))

    def body(self, s, t, attempt):
        target = s["Target"]
        execution = str(uuid.uuid5(uuid.NAMESPACE_URL, "%s#%s#%d" % (s["Arn"], iso(t), attempt)))
        if "Input" not in target:
            return json.dumps({
                "version": "0", "id": execution, "detail-type": "Scheduled Event",
                "source": "aws.scheduler", "account": s["Arn"].split(":")[4],
                "time": iso(t), "region": s["Arn"].split(":")[3],
                "resources": [s["Arn"]], "detail": "{}",
            })
        text = target["Input"]
        for key, value in (("scheduled-time", iso(t)), ("execution-id", execution),
                           ("attempt-number", str(attempt)), ("schedule-arn", s["Arn"])):
            text = text.replace("<aws.scheduler.%s>" % key, value)
        return text

    def attempt(self, s, st, t, attempt):
        """Sends one fire; on failure, records it for the next pass."""
        label = "%s/%s" % (s["GroupName"], s["Name"])
        target = s["Target"]
        body = self.body(s, t, attempt)
        try:
            if target["Arn"] == UNIVERSAL_SQS:
                params = json.loads(body)
                sqs = self.client_sqs(s["Arn"].split(":")[3])
                sent = sqs.send_message(**params)
                queue = params["QueueUrl"].rstrip("/").rsplit("/", 1)[-1]
                group = params.get("MessageGroupId")
            elif target["Arn"].startswith("arn:aws:sqs:"):
                group = (target.get("SqsParameters") or {}).get("MessageGroupId")
                queue = target["Arn"].split(":")[5]
                if queue.endswith(".fifo") and not group:
                    raise ValueError("a FIFO queue target needs SqsParameters.MessageGroupId")
                sent = self.send_to_queue(target["Arn"], body, group if queue.endswith(".fifo") else None)
            else:
                self.fail("failed schedule=%s: target %s is not SQS, which this helper does not play"
                          % (label, target["Arn"]))
                return False
        except Exception as e:  # noqa: BLE001 - any failure is the target's
            st.setdefault("retry", {})[iso(t)] = attempt
            self.fail("failed schedule=%s scheduled_time=%s attempt=%d: %s" % (label, iso(t), attempt, e))
            return False
        print("sent schedule=%s scheduled_time=%s attempt=%d queue=%s message_group_id=%s message_id=%s"
              % (label, iso(t), attempt, queue, group or "-", sent["MessageId"]), flush=True)
        return True

    def send_to_queue(self, queue_arn, body, group):
        _, _, _, region, account, name = queue_arn.split(":", 5)
        sqs = self.client_sqs(region)
        if queue_arn not in self.queue_urls:
            self.queue_urls[queue_arn] = sqs.get_queue_url(
                QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        params = {"QueueUrl": self.queue_urls[queue_arn], "MessageBody": body}
        if group:
            params["MessageGroupId"] = group
        return sqs.send_message(**params)

    def complete(self, s):
        """ActionAfterCompletion: DELETE deletes the finished schedule."""
        if s.get("ActionAfterCompletion") != "DELETE":
            return
        try:
            self.scheduler.delete_schedule(Name=s["Name"], GroupName=s["GroupName"])
        except self.scheduler.exceptions.ResourceNotFoundException:
            return
        self.state.pop(s["Arn"], None)
        self.note("deleted schedule=%s/%s (ActionAfterCompletion DELETE)" % (s["GroupName"], s["Name"]))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Fires due EventBridge schedules into SQS, as EventBridge would (for moto).")
    parser.add_argument("--endpoint", default=os.environ.get("MT_TEST_AWS_ENDPOINT"),
                        help="moto's URL (default $MT_TEST_AWS_ENDPOINT)")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION")
                        or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    parser.add_argument("--group", help="only this schedule group (default: every group)")
    parser.add_argument("--now", help="the time to fire at, ISO 8601 (default: the real clock)")
    parser.add_argument("--state", help="JSON file recording what has fired (default: in memory)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="one pass (the default)")
    mode.add_argument("--loop", type=float, metavar="SECONDS", help="a pass every SECONDS until a signal")
    args = parser.parse_args(argv)
    if not args.endpoint:
        parser.error("--endpoint is required (or set MT_TEST_AWS_ENDPOINT)")
    try:
        start = parse_time(args.now) if args.now else None
    except ValueError:
        parser.error("--now is not an ISO 8601 time: %r" % args.now)
    if args.loop is not None and args.loop <= 0:
        parser.error("--loop wants a positive number of seconds")

    firer = Firer(args.endpoint, args.region, args.group, args.state)
    real0 = dt.datetime.now(UTC)

    def now():
        real = dt.datetime.now(UTC)
        return real if start is None else start + (real - real0)

    if args.loop is None:
        try:
            firer.run(now())
        except Exception as e:  # noqa: BLE001 - AWS unreachable, and the like
            firer.fail("failed: %s" % e)
        return 1 if firer.failed else 0

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    while not stop:
        try:
            firer.run(now())
        except Exception as e:  # noqa: BLE001 - a loop outlives moto's absences
            firer.note("failed: %s" % e)
        deadline = time.monotonic() + args.loop
        while not stop and time.monotonic() < deadline:
            time.sleep(min(0.05, args.loop))
    return 0


if __name__ == "__main__":
    sys.exit(main())
