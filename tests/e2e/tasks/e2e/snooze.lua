-- Snoozes its first run after writing a row, with the transaction's own
-- start as the row's time (the snooze counts from it too); the next run
-- writes a second row. n is the attempt, plus 100 on the second run: both
-- runs must be attempt 1. With payload.quiet it runs no SQL until
-- payload.until (epoch seconds) has passed, snoozing meanwhile. Seconds
-- "inf" and "nan" stand for the numbers JSON cannot carry.
local special = { inf = math.huge, nan = 0 / 0 }

return {
  max_attempts = 1,
  handler = function(tx, payload, ctx)
    local seconds = special[payload.seconds] or payload.seconds
    if payload.quiet then
      if os.time() < payload["until"] then
        return ctx.snooze(seconds)
      end
      tx:exec("INSERT INTO e2e_rows (task_id, n) VALUES ($1, $2)", ctx.id, ctx.attempt)
      return
    end
    local runs = tx:query("SELECT count(*) AS c FROM e2e_rows WHERE task_id = $1", ctx.id)[1].c
    if runs == 0 then
      tx:exec("INSERT INTO e2e_rows (task_id, n, at) VALUES ($1, $2, now())", ctx.id, ctx.attempt)
      return ctx.snooze(seconds)
    end
    tx:exec("INSERT INTO e2e_rows (task_id, n) VALUES ($1, $2)", ctx.id, 100 + ctx.attempt)
  end,
}
