-- Configuration for the end-to-end tests: short intervals so that lease
-- expiry and shutdown happen within seconds.
return {
  tasks_dir = "tests/e2e/tasks",
  schemas_dir = "tests/e2e/schemas",
  workers = 4,
  poll_interval = 0.2,
  lease_timeout = 3,
  task_timeout = 10,
  shutdown_grace = 5,
}
