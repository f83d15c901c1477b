-- Records when its handler ran, by the database's clock, in e2e_spans (the
-- test creates it): how many ran at once, and when each started, is read
-- from there. Sleeps payload.seconds in between.
return {
  handler = function(tx, payload, ctx)
    local started = tx:query("SELECT clock_timestamp()::text AS t")[1].t
    if payload.seconds then
      tx:exec("SELECT pg_sleep($1)", payload.seconds)
    end
    tx:exec(
      "INSERT INTO e2e_spans (task_id, started, ended) VALUES ($1, $2::timestamptz, clock_timestamp())",
      ctx.id,
      started
    )
  end,
}
