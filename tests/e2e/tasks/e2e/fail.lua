-- Writes, then raises: the write must never be seen.
return {
  max_attempts = 3,
  retry_delay = 0,
  handler = function(tx, payload, ctx)
    tx:exec("INSERT INTO e2e_rows (task_id, n) VALUES ($1, $2)", ctx.id, ctx.attempt)
    error("failing on purpose, attempt " .. ctx.attempt)
  end,
}
