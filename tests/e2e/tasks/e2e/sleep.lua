-- Takes payload.seconds of wall time inside its transaction, after writing.
return {
  timeout = 30,
  handler = function(tx, payload, ctx)
    tx:exec("INSERT INTO e2e_rows (task_id, n) VALUES ($1, $2)", ctx.id, ctx.attempt)
    tx:exec("SELECT pg_sleep($1)", payload.seconds or 1)
  end,
}
