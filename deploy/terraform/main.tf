# What the moontask AWS backend needs: an SQS queue with a dead-letter
# queue, an EventBridge Scheduler schedule group, the role EventBridge
# assumes to send to the queue, and a policy for the runtime itself.
# See README.md, "Running on AWS".

terraform {
  required_version = ">= 1.3"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  suffix     = var.fifo ? ".fifo" : ""

  # A dead runtime's message reappears only after this, so it must outlast
  # a task; a live runtime extends it while its task runs.
  visibility_timeout = ceil(var.task_timeout) + 60

  # Every schedule of the group: the runtime makes and deletes mt-<id>,
  # mtr-<name> and mth-<prefix>-<hash> there.
  schedules_arn = "arn:${local.partition}:scheduler:${var.region}:${local.account_id}:schedule/${aws_scheduler_schedule_group.tasks.name}/*"
}

# ---- Queues ----

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.name}-dead-letter${local.suffix}"
  fifo_queue                = var.fifo
  message_retention_seconds = 1209600 # 14 days, the most: time to look
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "tasks" {
  name       = "${var.name}${local.suffix}"
  fifo_queue = var.fifo
  # EventBridge Scheduler sends to a FIFO queue without a deduplication id.
  content_based_deduplication = var.fifo
  visibility_timeout_seconds  = local.visibility_timeout
  # At least the longest direct delay (900 s); SQS's default of 4 days.
  message_retention_seconds = 345600
  # The runtime long-polls on its own (WaitTimeSeconds 20).
  receive_wait_time_seconds = 0
  # SQS-managed keys: EventBridge needs no KMS grant to send.
  sqs_managed_sse_enabled = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.max_receive_count
  })
}

# ---- EventBridge Scheduler ----

resource "aws_scheduler_schedule_group" "tasks" {
  name = var.name
}

data "aws_iam_policy_document" "scheduler_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# The role EventBridge Scheduler assumes to deliver a schedule's message:
# config.lua's aws.role_arn.
resource "aws_iam_role" "scheduler" {
  name               = "${var.name}-scheduler"
  description        = "EventBridge Scheduler sends moontask's scheduled tasks to SQS"
  assume_role_policy = data.aws_iam_policy_document.scheduler_trust.json
}

data "aws_iam_policy_document" "scheduler_send" {
  statement {
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.tasks.arn]
  }
}

resource "aws_iam_role_policy" "scheduler_send" {
  name   = "send-to-queue"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler_send.json
}

# ---- The runtime's permissions ----

data "aws_iam_policy_document" "runtime" {
  statement {
    sid = "Schedules"
    actions = [
      "scheduler:CreateSchedule",
      "scheduler:UpdateSchedule",
      "scheduler:GetSchedule",
      "scheduler:DeleteSchedule",
    ]
    resources = [local.schedules_arn]
  }

  statement {
    sid       = "ScheduleGroup"
    actions   = ["scheduler:GetScheduleGroup"]
    resources = [aws_scheduler_schedule_group.tasks.arn]
  }

  statement {
    sid       = "PassSchedulerRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.scheduler.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["scheduler.amazonaws.com"]
    }
  }

  statement {
    sid = "Queue"
    actions = [
      "sqs:SendMessage",
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.tasks.arn]
  }
}

resource "aws_iam_policy" "runtime" {
  name        = "${var.name}-runtime"
  description = "What a moontask runtime with backend = \"aws\" does with its queue and schedules"
  policy      = data.aws_iam_policy_document.runtime.json
}

resource "aws_iam_role" "runtime" {
  count              = var.runtime_role_trust_policy == null ? 0 : 1
  name               = "${var.name}-runtime"
  description        = "A moontask runtime with backend = \"aws\""
  assume_role_policy = var.runtime_role_trust_policy
}

resource "aws_iam_role_policy_attachment" "runtime" {
  for_each = toset(concat(aws_iam_role.runtime[*].name, var.runtime_role_names))

  role       = each.value
  policy_arn = aws_iam_policy.runtime.arn
}
