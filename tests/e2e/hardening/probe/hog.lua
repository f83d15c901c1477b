-- Allocates until its memory limit stops it, keeping everything in a
-- global of its file; with payload.modest it checks that the hoard is gone
-- and that a fair amount of memory is available again.
return {
  memory_limit = 16 * 1024 * 1024,
  max_attempts = 1,
  handler = function(tx, payload, ctx)
    if payload.modest then
      assert(hoard == nil, "the previous run's hoard is still here")
      local t = {}
      for i = 1, 1000 do t[i] = string.rep("x", 8000) .. i end
      tx:exec("INSERT INTO probe_log (task, note) VALUES ('hog', 'modest ok')")
      return
    end
    hoard = {}
    local ok = pcall(function()
      for i = 1, 1e9 do hoard[i] = string.rep("y", 1000) .. i end
    end)
    tx:exec("INSERT INTO probe_log (task, note) VALUES ('hog', 'survived the limit')")
  end,
}
