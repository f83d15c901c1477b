-- Library functions that loop in C over a range the script picks, without
-- allocating: each must still stop at the timeout.
return {
  timeout = 1, max_attempts = 1,
  handler = function(tx, payload, ctx)
    if payload.op == "rep" then
      return string.rep("", math.maxinteger), (""):rep(math.maxinteger, "")
    elseif payload.op == "move" then
      return table.move({}, 1, math.maxinteger - 1, 2)
    elseif payload.op == "remove" then
      local t = {}
      for i = 0, 62 do t[1 << i] = true end -- # may report a border near 2^62
      table.remove(t, 1)
      while true do end
    end
  end,
}
