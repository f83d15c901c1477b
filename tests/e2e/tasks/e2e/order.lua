-- Records the order it was given: a row means the handler ran.
return {
  schema = "e2e.order",
  handler = function(tx, payload, ctx)
    tx:exec("INSERT INTO e2e_rows (task_id, n) VALUES ($1, $2)", ctx.id, #payload.lines)
  end,
}
