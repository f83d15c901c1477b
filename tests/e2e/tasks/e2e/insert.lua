-- Inserts one row per run: counting rows tells how often a task's effects
-- were committed.
return {
  handler = function(tx, payload, ctx)
    tx:exec("INSERT INTO e2e_rows (task_id, n) VALUES ($1, $2)", ctx.id, payload.n)
  end,
}
