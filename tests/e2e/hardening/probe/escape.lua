-- Inserts a row, tries to end or chain the transaction with payload.sql,
-- then fails: nothing may be left committed.
return {
  max_attempts = 1,
  handler = function(tx, payload, ctx)
    tx:exec("INSERT INTO probe_log (task, note) VALUES ('escape', $1)", payload.sql)
    local ok, err = pcall(tx.exec, tx, payload.sql)
    if ok then error("the statement was allowed: " .. payload.sql) end
    error("refused as it should be: " .. tostring(err))
  end,
}
