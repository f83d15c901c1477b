-- Coroutines made while the file loads, run by the handler.
local spin = coroutine.create(function() while true do end end)
local wrapped = coroutine.wrap(function() while true do pcall(function() end) end end)
return {
  timeout = 1, max_attempts = 1,
  handler = function(tx, payload, ctx)
    if payload.close then
      -- Stopped in its hook, then closed by wrap: its __close must not run
      -- with hooks off.
      coroutine.wrap(function()
        local x <close> = setmetatable({}, { __close = function() while true do end end })
        while true do end
      end)()
    end
    if payload.wrap then wrapped() end
    coroutine.resume(spin)
    while true do coroutine.resume(spin) end
  end,
}
