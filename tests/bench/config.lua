-- Graphile Worker runs here with a logger that discards every line
-- (graphile/bench.js); moontask keeps only warnings and errors, so that
-- neither pays for a line per task. (At the default level, info, each task
-- run is one line of the log.)
return { tasks_dir = "tests/bench/tasks", poll_interval = 1, log_level = "warn" }
