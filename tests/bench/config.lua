return { tasks_dir = "tests/bench/tasks", workers = 4, poll_interval = 1 }
