-- A to-be-closed variable and an error object whose metamethods loop.
return {
  timeout = 1, max_attempts = 1,
  handler = function(tx, payload, ctx)
    if payload.tostring then
      error(setmetatable({}, { __tostring = function() while true do end end }))
    end
    local guard <close> = setmetatable({}, { __close = function() while true do end end })
    while true do end
  end,
}
