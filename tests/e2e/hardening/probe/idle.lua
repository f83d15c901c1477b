-- Idles inside its transaction until the server's
-- idle_in_transaction_session_timeout kills the connection.
return {
  max_attempts = 1,
  handler = function(tx, payload, ctx)
    tx:exec("SET idle_in_transaction_session_timeout = 200")
    local until_ = os.clock() + 1
    while os.clock() < until_ do end
    tx:exec("SELECT 1")
  end,
}
