-- attendance.merge_pools through the test kit: each `it` sets its rows up,
-- runs the handler and looks at the outcome in one transaction that is rolled
-- back. When the task runs and what happens after a failure are the
-- runtime's business: those specs go through `moontask schedule` and
-- `moontask run --drain` (spec.helper).
package.path = "./testkit/?.lua;" .. package.path
local kit = require("moontask.testkit")
local helper = require("spec.helper")

-- SQL for event `id`, two days out, with two pools and one attendee in each:
-- pools id*10+1 ('1st year', 10 spots) and id*10+2 ('2nd-5th year', 5 spots),
-- attendees Ada and Bo (same ids). The explicit ids stay clear of the ones
-- the identity columns hand out (helper.reset restarts them at 1), e.g. the
-- merged pool's. The same text serves kit setup and helper.sql.
local function event_with_pools(id)
  return string.format([[
    INSERT INTO app.events (id, title, starts_at)
    VALUES (%d, 'Bedpres: Moon Corp', now() + interval '2 days');
    INSERT INTO app.attendance_pools (id, event_id, pool, capacity)
    VALUES (%d, %d, '1st year', 10), (%d, %d, '2nd-5th year', 5);
    INSERT INTO app.attendees (id, event_id, pool_id, name, email)
    VALUES (%d, %d, %d, 'Ada', 'ada@example.org'),
           (%d, %d, %d, 'Bo', 'bo@example.org')]],
    id, id * 10 + 1, id, id * 10 + 2, id,
    id * 10 + 1, id, id * 10 + 1, id * 10 + 2, id, id * 10 + 2)
end

-- An event's pools, by name.
local function pools_of(event)
  return "SELECT pool, capacity, merged FROM app.attendance_pools" ..
         " WHERE event_id = " .. event .. " ORDER BY pool"
end

-- Its attendees with the name of their pool.
local function attendees_of(event)
  return "SELECT a.name, p.pool FROM app.attendees a" ..
         " JOIN app.attendance_pools p ON p.id = a.pool_id" ..
         " WHERE a.event_id = " .. event .. " ORDER BY a.name"
end

local function merged_at_of(event)
  return "SELECT pools_merged_at IS NOT NULL AS merged FROM app.events WHERE id = " .. event
end

-- The pools of event 1 before and after a merge.
local unmerged = {
  { pool = "1st year", capacity = 10, merged = false },
  { pool = "2nd-5th year", capacity = 5, merged = false },
}
local merged = {
  { pool = "1st year", capacity = 10, merged = true },
  { pool = "2nd-5th year", capacity = 5, merged = true },
  { pool = "merged", capacity = 15, merged = false },
}

-- Runs attendance.merge_pools for event 1 after `setup` (SQL text or a
-- list), with the standard checks on event 1.
local function merge(setup)
  return kit.run("attendance.merge_pools", { event_id = 1 }, {
    setup = setup,
    check = {
      pools = pools_of(1),
      attendees = attendees_of(1),
      event = merged_at_of(1),
    },
  })
end

describe("task: attendance.merge_pools", function()
  before_each(helper.reset)

  it("moves the capacity of every pool into one merged pool", function()
    local result = merge(event_with_pools(1))

    assert.is_true(result.ok, result.error)
    assert.are.same(merged, result.checks.pools)
    assert.are.same({}, result.scheduled)
  end)

  it("moves the attendees into the merged pool", function()
    local result = merge(event_with_pools(1))

    assert.is_true(result.ok, result.error)
    assert.are.same({
      { name = "Ada", pool = "merged" },
      { name = "Bo", pool = "merged" },
    }, result.checks.attendees)
  end)

  it("marks the event as merged", function()
    local result = merge(event_with_pools(1))

    assert.is_true(result.ok, result.error)
    assert.is_true(result.checks.event[1].merged)
  end)

  it("is idempotent: a second run changes nothing", function()
    -- The state a first run leaves, stamped an hour ago (a run now would
    -- stamp now(): the transaction's time, the same for setup and handler).
    local result = kit.run("attendance.merge_pools", { event_id = 1 }, {
      setup = { event_with_pools(1), [[
        INSERT INTO app.attendance_pools (id, event_id, pool, capacity)
        VALUES (13, 1, 'merged', 15);
        UPDATE app.attendees SET pool_id = 13 WHERE event_id = 1;
        UPDATE app.attendance_pools SET merged = true WHERE id IN (11, 12);
        UPDATE app.events SET pools_merged_at = now() - interval '1 hour' WHERE id = 1]] },
      check = {
        pools = pools_of(1),
        attendees = attendees_of(1),
        stamp = "SELECT pools_merged_at = now() - interval '1 hour' AS unchanged" ..
                "  FROM app.events WHERE id = 1",
      },
    })

    assert.is_true(result.ok, result.error)
    assert.are.same(merged, result.checks.pools)
    assert.are.same({
      { name = "Ada", pool = "merged" },
      { name = "Bo", pool = "merged" },
    }, result.checks.attendees)
    assert.is_true(result.checks.stamp[1].unchanged)
  end)

  it("leaves other events' pools alone", function()
    local result = kit.run("attendance.merge_pools", { event_id = 1 }, {
      setup = { event_with_pools(1), event_with_pools(2) },
      check = {
        mine = pools_of(1),
        pools = pools_of(2),
        attendees = attendees_of(2),
        event = merged_at_of(2),
      },
    })

    assert.is_true(result.ok, result.error)
    assert.are.same(merged, result.checks.mine)
    assert.are.same(unmerged, result.checks.pools)
    assert.are.same({
      { name = "Ada", pool = "1st year" },
      { name = "Bo", pool = "2nd-5th year" },
    }, result.checks.attendees)
    assert.is_false(result.checks.event[1].merged)
  end)

  it("fails for a missing event, naming it", function()
    local result = kit.run("attendance.merge_pools", { event_id = 4242 })

    assert.is_true(result.valid)
    assert.is_false(result.ok)
    assert.matches("event 4242 does not exist", result.error, 1, true)
  end)

  it("rolls back its writes when a later statement fails", function()
    -- Fails the last statement of the handler (stamping the event), after the
    -- merged pool, the attendees and the old pools were all written.
    local result = merge({ event_with_pools(1), [[
      CREATE FUNCTION app.spec_fail() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'injected failure'; END $$;
      CREATE TRIGGER spec_fail BEFORE UPDATE ON app.events
        FOR EACH ROW EXECUTE FUNCTION app.spec_fail()]] })

    assert.is_false(result.ok)
    assert.matches("injected failure", result.error, 1, true)
    assert.are.same(unmerged, result.checks.pools)
    assert.are.same({
      { name = "Ada", pool = "1st year" },
      { name = "Bo", pool = "2nd-5th year" },
    }, result.checks.attendees)
    assert.is_false(result.checks.event[1].merged)
  end)

  it("refuses an event id that is not a positive integer, naming its pointer", function()
    local result = kit.run("attendance.merge_pools", { event_id = 0 })
    assert.is_false(result.valid)
    assert.is_false(result.ok)
    assert.matches("/event_id", result.error, 1, true)

    local ok, errors = kit.validate("attendance.merge_pools", '{"event_id": "1"}')
    assert.is_false(ok)
    assert.matches("/event_id", errors, 1, true)
  end)

  -- When it runs and what becomes of its task are the runtime's business:
  -- these go through `moontask schedule` and `moontask run --drain`.

  it("is completed when drained at its time", function()
    helper.sql(event_with_pools(1))
    local id = helper.schedule("attendance.merge_pools", { event_id = 1 })
    helper.drain()

    local task = helper.task(id)
    assert.are.equal("completed", task.state)
    assert.are.equal(1, task.attempts)
    assert.are.same(merged, helper.rows(pools_of(1)))
  end)

  it("is not run before its time", function()
    helper.sql(event_with_pools(1))
    local id = helper.schedule("attendance.merge_pools", { event_id = 1 }, "--in", "1h")
    helper.drain()

    local task = helper.task(id)
    assert.are.equal("scheduled", task.state)
    assert.are.equal(0, task.attempts)
    assert.are.same(unmerged, helper.rows(pools_of(1)))
  end)

  it("is retried later when it fails", function()
    local id = helper.schedule("attendance.merge_pools", { event_id = 4242 })
    helper.drain()

    local task = helper.task(id)
    assert.are.equal("scheduled", task.state)
    assert.are.equal(1, task.attempts)
    assert.matches("event 4242 does not exist", task.last_error, 1, true)
    assert.are.equal("t", helper.value(
      "SELECT run_at > now() FROM moontask.tasks WHERE id = " .. id))
  end)

  -- The application's side, as the task file's header shows it: scheduled
  -- under the event's key a day out, and moved to now with one reschedule
  -- in the transaction that moves the event, which ends with `ending`.
  local function move_event_then(ending)
    helper.sql(event_with_pools(1))
    local id = helper.value([[
      SELECT moontask.schedule('attendance.merge_pools', '{"event_id": 1}',
                               now() + interval '1 day', 'merge-pools:1')]])
    helper.sql([[
      BEGIN;
      UPDATE app.events SET starts_at = now() WHERE id = 1;
      SELECT moontask.reschedule((SELECT id FROM moontask.find('merge-pools:1')),
                                 now() - interval '1 day');
      ]] .. ending)
    helper.drain()
    return id
  end

  it("follows its event when the application reschedules it", function()
    local id = move_event_then("COMMIT")

    assert.are.equal("completed", helper.task(id).state)
    assert.are.same(merged, helper.rows(pools_of(1)))
    assert.are.equal("1", helper.value(
      "SELECT count(*) FROM moontask.tasks WHERE key = 'merge-pools:1'"))
  end)

  it("stays where it was when the application's change rolls back", function()
    local id = move_event_then("ROLLBACK")

    assert.are.equal("scheduled", helper.task(id).state)
    assert.are.same(unmerged, helper.rows(pools_of(1)))
  end)
end)
