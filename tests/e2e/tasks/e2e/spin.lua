-- Never returns, and tries to swallow the timeout with pcall.
return {
  timeout = 0.5,
  max_attempts = 1,
  handler = function(tx, payload, ctx)
    while true do pcall(function() for _ = 1, 1e6 do end end) end
  end,
}
