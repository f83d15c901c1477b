-- Schedules payload.payload for payload.task, catching a validation error
-- (recorded as n = -1) so that the handler itself still succeeds.
return {
  handler = function(tx, payload, ctx)
    local ok, err = pcall(tx.schedule, tx, payload.task, payload.payload)
    if not ok then
      tx:exec("INSERT INTO e2e_rows (task_id, n) VALUES ($1, -1)", ctx.id)
      ctx.log("info", "%s", err)
    end
  end,
}
