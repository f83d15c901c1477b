variable "name" {
  description = "Prefix of every name made here: the queue, its dead-letter queue, the schedule group, the roles and the policy."
  type        = string
  default     = "moontask"

  validation {
    # The tightest of the limits it feeds: SQS queue names ([A-Za-z0-9_-],
    # "-dead-letter.fifo" appended), IAM role names ("-scheduler" appended,
    # 64 in all) and schedule group names.
    condition     = can(regex("^[A-Za-z0-9_-]{1,50}$", var.name))
    error_message = "name must be 1 to 50 of A-Z a-z 0-9 _ -."
  }
}

variable "region" {
  description = "AWS region of the queue and the schedules, e.g. eu-west-1."
  type        = string
}

variable "task_timeout" {
  description = "config.lua's task_timeout, in seconds. The queue's visibility timeout is this plus 60."
  type        = number
  default     = 60

  validation {
    # SQS's visibility timeout is at most 12 hours (43200 s).
    condition     = var.task_timeout > 0 && ceil(var.task_timeout) + 60 <= 43200
    error_message = "task_timeout must be above 0 and at most 43140 seconds (the visibility timeout, task_timeout + 60, is at most 12 hours)."
  }
}

variable "max_receive_count" {
  description = "Receives of a message before SQS moves it to the dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000 && floor(var.max_receive_count) == var.max_receive_count
    error_message = "max_receive_count must be a whole number from 1 to 1000."
  }
}

variable "fifo" {
  description = "Make FIFO queues instead of standard ones. Standard is recommended: on a FIFO queue only tasks due now are sent directly, every later one goes through a schedule."
  type        = bool
  default     = false
}

variable "runtime_role_trust_policy" {
  description = "A trust policy (JSON) for a runtime role to create with the runtime policy attached, e.g. for ec2.amazonaws.com, ecs-tasks.amazonaws.com or an EKS OIDC provider (IRSA). null: no role is made."
  type        = string
  default     = null
}

variable "runtime_role_names" {
  description = "Names of existing IAM roles (an instance role, an IRSA role) to attach the runtime policy to."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource that takes them."
  type        = map(string)
  default     = {}
}
