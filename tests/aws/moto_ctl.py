#!/usr/bin/env python3
"""boto3 against a moto_server of the test's own, for the unit tests of the
typed AWS clients (tests/unit/test_aws_sqs.c, test_aws_scheduler.c): it sets
up what the runtime expects to exist (queues, a schedule group, a role)
and reads back what the client under test did, through an SDK that is not
ours, so that a test asserts on AWS's state rather than on our own answers.

    moto_ctl.py PORT COMMAND [ARGS...]

prints one JSON document on stdout and exits 0; anything unexpected is a
traceback and exit 1 (the test fails); exit 3 if boto3 is missing. The
region and credentials come from the environment the test set
(AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN),
so that with moto's authentication on, these calls are signed with the
same credentials as the client's.

Commands:
  setup [PREFIX [VISIBILITY]]
                          queues mt-std (VisibilityTimeout 30, redriven to
                          mt-dlq after 5 receives) and mt-fifo.fifo
                          (content-based deduplication), schedule group
                          mt-group, role mt-scheduler; prints their URLs,
                          ARNs and names. PREFIX replaces "mt" in every
                          name (tests sharing one moto keep apart), and
                          VISIBILITY the standard queue's 30 s.
  send URL BODY           sends BODY to the queue as it is.
  counts URL              ApproximateNumberOfMessages{,NotVisible,Delayed}.
  peek URL                receives what is visible (VisibilityTimeout 0, so
                          it stays so): body, group id, dedup id, receive
                          count of each.
  get-schedule GROUP NAME the schedule, or {"error": code}.
  list-schedules GROUP    the names of the group's schedules.
  assume-role             a role allowed everything, assumed: temporary
                          credentials with a session token.
  auth on|off             moto's signature and permission checks
                          (POST /moto-api/reset-auth).
"""

import json
import os
import sys
import urllib.request

try:
    import boto3
    import botocore.exceptions
except ImportError:
    print("boto3 is not installed", file=sys.stderr, flush=True)
    sys.exit(3)


def client(port, service):
    return boto3.client(
        service,
        region_name=os.environ.get("AWS_REGION", "eu-west-1"),
        endpoint_url="http://127.0.0.1:%d" % port,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        aws_session_token=os.environ.get("AWS_SESSION_TOKEN") or None,
    )


def queue_arn(sqs, url):
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attrs["Attributes"]["QueueArn"]


def setup(port, prefix="mt", visibility="30"):
    sqs = client(port, "sqs")
    dlq = sqs.create_queue(QueueName=prefix + "-dlq")["QueueUrl"]
    dlq_arn = queue_arn(sqs, dlq)
    std = sqs.create_queue(
        QueueName=prefix + "-std",
        Attributes={
            "VisibilityTimeout": visibility,
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}
            ),
        },
    )["QueueUrl"]
    fifo = sqs.create_queue(
        QueueName=prefix + "-fifo.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    client(port, "scheduler").create_schedule_group(Name=prefix + "-group")
    role = client(port, "iam").create_role(
        RoleName=prefix + "-scheduler",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "scheduler.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]
    return {
        "std_url": std,
        "std_arn": queue_arn(sqs, std),
        "fifo_url": fifo,
        "fifo_arn": queue_arn(sqs, fifo),
        "dlq_url": dlq,
        "dlq_arn": dlq_arn,
        "group": prefix + "-group",
        "role_arn": role["Arn"],
    }


def counts(port, url):
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attrs = client(port, "sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=names
    )["Attributes"]
    return {"visible": int(attrs[names[0]]), "not_visible": int(attrs[names[1]]),
            "delayed": int(attrs[names[2]])}


def peek(port, url):
    got = client(port, "sqs").receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=0,
        MessageSystemAttributeNames=["All"],
    )
    out = []
    for m in got.get("Messages", []):
        a = m.get("Attributes", {})
        out.append(
            {
                "body": m["Body"],
                "group_id": a.get("MessageGroupId"),
                "dedup_id": a.get("MessageDeduplicationId"),
                "receive_count": int(a.get("ApproximateReceiveCount", "0")),
            }
        )
    return {"messages": out}


def send(port, url, body):
    got = client(port, "sqs").send_message(QueueUrl=url, MessageBody=body)
    return {"message_id": got["MessageId"]}


def get_schedule(port, group, name):
    try:
        s = client(port, "scheduler").get_schedule(GroupName=group, Name=name)
    except botocore.exceptions.ClientError as e:
        return {"error": e.response["Error"]["Code"]}
    s.pop("ResponseMetadata", None)
    return json.loads(json.dumps(s, default=str))


def list_schedules(port, group):
    got = client(port, "scheduler").list_schedules(GroupName=group)
    return {"names": sorted(s["Name"] for s in got["Schedules"])}


def assume_role(port):
    iam = client(port, "iam")
    role = iam.create_role(
        RoleName="mt-runtime",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": "*"},
                     "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]
    iam.put_role_policy(
        RoleName="mt-runtime",
        PolicyName="everything",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
        ),
    )
    c = client(port, "sts").assume_role(
        RoleArn=role["Arn"], RoleSessionName="mt-unit-test"
    )["Credentials"]
    return {
        "AccessKeyId": c["AccessKeyId"],
        "SecretAccessKey": c["SecretAccessKey"],
        "SessionToken": c["SessionToken"],
    }


def auth(port, state):
    # moto counts requests and checks every one after the first N; "inf"
    # switches the checks off again. text/plain, or Flask reads the body
    # as a form and moto sees none.
    n = b"0" if state == "on" else b"inf"
    req = urllib.request.Request(
        "http://127.0.0.1:%d/moto-api/reset-auth" % port,
        data=n,
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    return json.loads(urllib.request.urlopen(req).read())


def main():
    port = int(sys.argv[1])
    cmd, args = sys.argv[2], sys.argv[3:]
    commands = {
        "setup": setup,
        "counts": counts,
        "peek": peek,
        "send": send,
        "get-schedule": get_schedule,
        "list-schedules": list_schedules,
        "assume-role": assume_role,
        "auth": auth,
    }
    print(json.dumps(commands[cmd](port, *args)), flush=True)


if __name__ == "__main__":
    main()
