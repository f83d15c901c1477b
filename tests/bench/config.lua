return { tasks_dir = "tests/bench/tasks", poll_interval = 1 }
