-- Loops inside an xpcall message handler, where hooks used to be off, with
-- a timeout far beyond the test: only the shutdown's abort can stop it.
return {
  timeout = 3600,
  handler = function(tx, payload, ctx)
    tx:exec("INSERT INTO probe_log (task, note) VALUES ('stuck', 'started')")
    xpcall(function() while true do end end, function() while true do end end)
  end,
}
