-- Runs after poison.lua on the same worker: everything must be intact.
return {
  handler = function(tx, payload, ctx)
    local broken = {}
    local function check(what, ok) if not ok then broken[#broken + 1] = what end end
    check("string.format", string.format("%d-%s", 5, "x") == "5-x")
    check("string.upper", string.upper("a") == "A")
    check("method upper", ("x"):upper() == "X")
    check("string.rep", ("ab"):rep(2) == "abab")
    check("table.concat", table.concat({ "a", "b" }, ",") == "a,b")
    check("json.encode", json.encode({ a = 1 }) == '{"a":1}')
    check("math.floor", math.floor(2.5) == 2)
    check("os.time", os.time() > 1700000000)
    check("pcall", select(2, pcall(error, "boom")) == "boom")
    check("coroutine.wrap", coroutine.wrap(function() return 7 end)() == 7)
    check("decoded array", json.is_array(json.decode("[1]")) and json.decode("[1]")[1] == 1)
    check("payload", payload.n == 1)
    local t = { "a", "c" }
    table.insert(t, 2, "b")
    table.insert(t, "d")
    check("table.insert", table.concat(t) == "abcd")
    check("table.remove", table.remove(t, 1) == "a" and table.remove(t) == "d" and table.concat(t) == "bc")
    check("table.move", table.concat(table.move({ 1, 2, 3 }, 1, 3, 2), ",") == "1,1,2,3")
    check("table.move errors", not pcall(table.move, {}, 1, "x", 1))
    check("string.rep", ("ab"):rep(3, "-") == "ab-ab-ab" and string.rep("", 5) == "")
    ctx.log("info", "victim checked %d things", 17)
    tx:exec("INSERT INTO probe_log (task, note) VALUES ('victim', $1)",
      #broken == 0 and "intact" or ("broken: " .. table.concat(broken, ", ")))
  end,
}
