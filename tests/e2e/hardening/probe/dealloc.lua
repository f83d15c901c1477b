-- Logs a row through a statement the runtime prepares once per connection;
-- with payload.drop, then drops every prepared statement of the session,
-- the runtime's included, by dynamic SQL that no reading of the text sees.
return {
  max_attempts = 1,
  handler = function(tx, payload, ctx)
    tx:exec("INSERT INTO probe_log (task, note) VALUES ('dealloc', $1)",
      tostring(ctx.id))
    if payload.drop then
      tx:exec("DO $$ BEGIN EXECUTE 'DEALLOCATE ALL'; END $$")
    end
  end,
}
