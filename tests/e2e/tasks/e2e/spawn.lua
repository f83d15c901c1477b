-- Schedules a follow-up in its own transaction, then fails on the first
-- attempt: the follow-up of the failed attempt must vanish with it.
return {
  max_attempts = 2,
  retry_delay = 0,
  handler = function(tx, payload, ctx)
    tx:schedule("e2e.insert", { n = ctx.attempt })
    if ctx.attempt == 1 then error("first attempt fails after scheduling") end
  end,
}
