-- One row per task: the runtime's cost plus one transaction.
return {
  handler = function(tx, payload, ctx)
    tx:exec("INSERT INTO bench_rows (task_id) VALUES ($1)", ctx.id)
  end,
}
