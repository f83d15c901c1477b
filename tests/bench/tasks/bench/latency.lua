-- Records when the handler started, on the database's clock, so that it can
-- be compared with the commit time of the transaction that scheduled it.
return {
  handler = function(tx, payload, ctx)
    tx:exec("INSERT INTO bench_latency (task_id, started) VALUES ($1, clock_timestamp())", ctx.id)
  end,
}
