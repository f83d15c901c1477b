-- Tries every route by which one task could change what another task on
-- the same worker sees, and records what each attempt found.
return {
  handler = function(tx, payload, ctx)
    local found = {}
    local function note(what, value) found[#found + 1] = what .. "=" .. tostring(value) end

    -- The library tables and globals of this file are its own copies.
    string.format = function() return "pwned" end
    string.upper = function() return "pwned" end
    table.concat = function() return "pwned" end
    json.encode = function() return "pwned" end
    math.floor = function() return -1 end
    os.time = function() return 0 end
    coroutine.wrap = function() error("pwned") end
    rawset(string, "rep", function() return "pwned" end)
    local real_pcall = pcall
    pcall = function() return true, "pwned" end
    error = function() end

    -- Shared tables that used to be reachable.
    note("env_mt", getmetatable(_ENV))
    note("string_mt", getmetatable(""))
    note("array_mt", getmetatable(json.array()))
    note("object_mt", getmetatable(json.decode("{}")))
    note("tx_mt", getmetatable(tx))
    local ok, err = real_pcall(setmetatable, json.array(), { __index = function() return "pwned" end })
    note("set_array_mt", ok)
    ok = real_pcall(function() getmetatable("").__index.upper = function() return "pwned" end end)
    note("string_index", ok)
    ok = real_pcall(function() getmetatable(tx).__index.exec = function() return 0 end end)
    note("tx_index", ok)
    ok, err = real_pcall(setmetatable, {}, { __gc = function() end })
    note("gc", ok)

    tx:exec("INSERT INTO probe_log (task, note) VALUES ('poison', $1)", table.concat and
      (function() local s = "" for i, f in ipairs(found) do s = s .. (i > 1 and " " or "") .. f end return s end)())
  end,
}
