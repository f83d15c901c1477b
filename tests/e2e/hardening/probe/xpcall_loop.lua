-- A message handler that never returns, for an ordinary error and for the
-- timeout itself.
return {
  timeout = 1, max_attempts = 1,
  handler = function(tx, payload, ctx)
    xpcall(function() error("x") end, function() while true do end end)
    xpcall(function() while true do end end, function() while true do end end)
  end,
}
