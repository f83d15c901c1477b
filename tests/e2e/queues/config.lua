-- The end-to-end tests' configuration with named queues (test_queues.sh).
return {
  tasks_dir = "tests/e2e/tasks",
  schemas_dir = "tests/e2e/schemas",
  workers = 4,
  poll_interval = 0.2,
  lease_timeout = 3,
  task_timeout = 10,
  shutdown_grace = 5,
  queues = {
    limited = { concurrency = 2 },
    paced = { rate = "20/s" },
    label = {},
  },
}
