-- Reports what the previous task on this worker left in the session.
return {
  handler = function(tx, payload, ctx)
    local row = tx:query([[
      SELECT current_setting('default_transaction_read_only') AS read_only,
             current_setting('search_path') AS search_path,
             current_setting('statement_timeout') AS statement_timeout,
             current_setting('application_name') AS app,
             (SELECT count(*) FROM pg_prepared_statements WHERE from_sql) AS prepared,
             (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
                 AND pid = pg_backend_pid()) AS advisory,
             (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()) AS temp,
             (SELECT count(*) FROM pg_listening_channels()) AS listening,
             (SELECT count(*) FROM pg_cursors WHERE is_holdable) AS cursors]])[1]
    -- lastval() raises when this session has used no sequence: a savepoint
    -- keeps the transaction usable either way.
    tx:exec("SAVEPOINT probe")
    local ok = pcall(tx.query, tx, "SELECT lastval()")
    tx:exec("ROLLBACK TO SAVEPOINT probe")
    tx:exec("INSERT INTO probe_log (task, note) VALUES ('check', $1)",
      string.format("ro=%s path=%s timeout=%s app=%s prepared=%d advisory=%d temp=%d listen=%d cursors=%d lastval=%s",
        row.read_only, row.search_path, row.statement_timeout, row.app, row.prepared,
        row.advisory, row.temp, row.listening, row.cursors, ok and "kept" or "none"))
  end,
}
