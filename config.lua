-- moontask configuration. Durations are in seconds.
return {
  -- nil: the embedded database under .moontask/ (see `moontask db`).
  database_url = os.getenv("DATABASE_URL"),
  backend = "postgres",
  tasks_dir = "tasks",
  schemas_dir = "schemas",
  workers = 8,           -- worker threads, one Lua state and connection each
  poll_interval = 1,     -- fallback polling when no NOTIFY arrives
  lease_timeout = 30,    -- a dead runtime's tasks return after this
  task_timeout = 60,     -- default per-task limit
  shutdown_grace = 30,   -- SIGTERM: how long tasks in flight may finish
  -- What handlers may read with ctx.env: the mail provider of
  -- tasks/email/send_reminder.lua (unset, the mail stays in app.outbox).
  env = { "EMAIL_API_URL", "EMAIL_API_KEY" },
}
