-- A statement that outlives the task's timeout.
return {
  timeout = 0.5,
  max_attempts = 1,
  handler = function(tx, payload, ctx)
    tx:exec("SELECT pg_sleep(30)")
  end,
}
