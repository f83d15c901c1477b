-- Leaves as much as it can behind in its session, then commits or fails.
return {
  max_attempts = 1,
  handler = function(tx, payload, ctx)
    tx:exec("SELECT nextval('probe_seq')")
    tx:exec("SET default_transaction_read_only = on")
    tx:exec("SET search_path = nowhere")
    tx:exec("SELECT set_config('application_name', 'dirty', false)")
    -- The runtime keeps its own prepared statements across tasks.
    local ok, err = pcall(tx.exec, tx, "PREPARE leftover AS SELECT 1")
    assert(not ok and tostring(err):find("is not allowed"), tostring(err))
    tx:exec("SELECT pg_advisory_lock(4242)")
    tx:exec("CREATE TEMP TABLE leftover (x int)")
    tx:exec("LISTEN leftover")
    tx:exec("DECLARE leftover_cursor CURSOR WITH HOLD FOR SELECT 1")
    tx:exec("SET statement_timeout = 1")
    if payload.fail then error("failing after dirtying the session") end
  end,
}
