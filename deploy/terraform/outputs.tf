output "queue_url" {
  description = "config.lua's aws.queue_url."
  value       = aws_sqs_queue.tasks.url
}

output "queue_arn" {
  description = "The queue's ARN, the target of every schedule."
  value       = aws_sqs_queue.tasks.arn
}

output "dead_letter_queue_url" {
  description = "Where messages go after max_receive_count receives (and poison messages with aws.poison = \"keep\")."
  value       = aws_sqs_queue.dead_letter.url
}

output "schedule_group" {
  description = "config.lua's aws.schedule_group."
  value       = aws_scheduler_schedule_group.tasks.name
}

output "scheduler_role_arn" {
  description = "config.lua's aws.role_arn: the role EventBridge Scheduler assumes to send to the queue."
  value       = aws_iam_role.scheduler.arn
}

output "runtime_policy_arn" {
  description = "The policy the runtime's identity needs: attach it to its instance role, task role or IRSA role."
  value       = aws_iam_policy.runtime.arn
}

output "runtime_role_arn" {
  description = "The runtime role made from runtime_role_trust_policy, or null."
  value       = one(aws_iam_role.runtime[*].arn)
}

output "config_lua" {
  description = "Settings to put in the table config.lua returns."
  value       = <<-EOT
    backend = "aws",
    task_timeout = ${var.task_timeout},  -- the queue's visibility timeout is ${local.visibility_timeout}
    aws = {
      region = "${var.region}",
      queue_url = "${aws_sqs_queue.tasks.url}",
      schedule_group = "${aws_scheduler_schedule_group.tasks.name}",
      role_arn = "${aws_iam_role.scheduler.arn}",
    },
  EOT
}
