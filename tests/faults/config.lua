-- Configuration for the fault suite: a lease of 3 s, so that the tasks of
-- a runtime that died or stopped come back within seconds, and short
-- intervals everywhere else.
return {
  tasks_dir = "tests/faults/tasks",
  schemas_dir = "tests/e2e/schemas",
  workers = 4,
  poll_interval = 0.2,
  lease_timeout = 3,
  task_timeout = 10,
  shutdown_grace = 5,
}
