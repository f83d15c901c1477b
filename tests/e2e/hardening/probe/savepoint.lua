-- Savepoints live inside the task's transaction and stay allowed.
return {
  handler = function(tx, payload, ctx)
    tx:exec("SAVEPOINT before_insert")
    tx:exec("INSERT INTO probe_log (task, note) VALUES ('savepoint', 'rolled back')")
    tx:exec("ROLLBACK TO SAVEPOINT before_insert")
    tx:exec("RELEASE SAVEPOINT before_insert")
    tx:exec("INSERT INTO probe_log (task, note) VALUES ('savepoint', 'kept')")
  end,
}
