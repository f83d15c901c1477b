-- Inserts one row per run, then pauses payload.pause seconds inside its
-- transaction, so that a fault striking mid-task finds the row written
-- but not committed. The row carries the attempt: the committed one must
-- be the task's last. A fault may cut off the same task many times (each
-- claim counts an attempt, and the lease brings it back), so it has
-- attempts to spare, and retries at once.
return {
  max_attempts = 100,
  retry_delay = 0,
  timeout = 30,
  handler = function(tx, payload, ctx)
    tx:exec("INSERT INTO e2e_rows (task_id, n) VALUES ($1, $2)", ctx.id, ctx.attempt)
    if (payload.pause or 0) > 0 then
      tx:exec("SELECT pg_sleep($1)", payload.pause)
    end
  end,
}
