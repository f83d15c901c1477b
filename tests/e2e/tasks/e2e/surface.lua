-- Drives tx:cancel, tx:cancel_key, tx:reschedule, tx:get, tx:find and
-- tx:schedule's options on the tasks the test scheduled (their ids in the
-- payload). A check that fails fails the task, with the check's message in
-- last_error; the effects on the other tasks are asserted in the database.
-- With payload.fail it cancels payload.a and then fails: the cancel must
-- roll back.
local function raises(want, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error containing: " .. want)
  assert(tostring(err):find(want, 1, true), "error '" .. tostring(err) .. "' lacks '" .. want .. "'")
end

return {
  max_attempts = 1,
  handler = function(tx, p, ctx)
    if p.fail then
      assert(tx:cancel(p.a) == true, "cancel before the failure")
      error("failing after a cancel")
    end

    -- cancel by id and by key: true once, then false (no longer scheduled).
    assert(tx:cancel(p.a) == true, "cancel a")
    assert(tx:cancel(p.a) == false, "cancel a again")
    assert(tx:cancel_key("surface-k") == true, "cancel_key")
    assert(tx:cancel_key("surface-k") == false, "cancel_key again")
    assert(tx:cancel(ctx.id) == false, "a running task cannot be cancelled")

    -- get and find: the fields, the decoded payload, nil for no task.
    local b = tx:find("surface-k")
    assert(b and b.id == p.b and b.state == "cancelled", "find the cancelled b")
    local me = tx:get(ctx.id)
    assert(me.state == "running" and me.attempts == 1 and me.name == "e2e.surface", "get self")
    assert(me.queue == "default" and me.priority == 0, "default queue and priority")
    assert(me.payload.c == p.c, "payload decoded")
    assert(me.run_at == ctx.run_at, "run_at as ctx has it: " .. me.run_at .. " vs " .. ctx.run_at)
    assert(me.key == nil and me.last_error == nil, "NULL fields absent")
    assert(tx:get(p.missing) == nil, "get of no task")
    assert(tx:find("surface-none") == nil, "find of no key")

    -- reschedule: now, with a new payload; to a time; a missing task.
    assert(tx:reschedule(p.c, { delay = 0, payload = { n = 33 } }) == true, "reschedule c")
    local c = tx:get(p.c)
    assert(c.payload.n == 33 and c.state == "scheduled", "c's new payload")
    assert(tx:reschedule(p.d, { run_at = "2030-01-02T03:04:05Z" }) == true, "reschedule d")
    assert(tx:get(p.d).run_at == "2030-01-02T03:04:05.000000Z", "d's new time: " .. tx:get(p.d).run_at)
    assert(tx:reschedule(p.missing, { delay = 1 }) == false, "reschedule of no task")
    assert(tx:reschedule(p.a, { delay = 1 }) == false, "reschedule of a cancelled task")
    -- A payload that breaks d's schema is refused before any SQL runs, so
    -- the transaction carries on.
    raises("does not match schema e2e.order", tx.reschedule, tx, p.d, { payload = { email = "x" } })
    raises("nothing to change", tx.reschedule, tx, p.d, {})
    raises("payload must be a table", tx.reschedule, tx, p.d, { payload = "x" })

    -- tx:schedule's options.
    local r1 = tx:schedule("e2e.insert", { n = 5 }, { key = "surface-r", delay = 3600, priority = 7 })
    local r = tx:get(r1)
    assert(r.priority == 7 and r.key == "surface-r", "priority given")
    local r2 = tx:schedule("e2e.insert", { n = 6 }, { key = "surface-r", delay = 0, replace = true,
                                                     priority = -3, queue = "default" })
    assert(r2 == r1, "replace keeps the task")
    r = tx:get(r1)
    assert(r.priority == -3 and r.payload.n == 6, "replaced")
    raises("priority must be an integer from -32768 to 32767", tx.schedule, tx, "e2e.insert", {}, { priority = 1.5 })
    raises("priority must be an integer from -32768 to 32767", tx.schedule, tx, "e2e.insert", {}, { priority = 40000 })
    raises("priority must be an integer", tx.schedule, tx, "e2e.insert", {}, { priority = "1" })
    raises("queue must be a string", tx.schedule, tx, "e2e.insert", {}, { queue = 1 })
    raises("invalid queue name", tx.schedule, tx, "e2e.insert", {}, { queue = "a-b" })
    raises("replace must be a boolean", tx.schedule, tx, "e2e.insert", {}, { key = "x", replace = "yes" })
    raises("replace needs a key", tx.schedule, tx, "e2e.insert", {}, { replace = true })
    tx:exec("INSERT INTO e2e_rows (task_id, n) VALUES ($1, 0)", ctx.id)
  end,
}
