local helper = require("spec.helper")

-- An event two days out with two pools and one attendee in each.
local function event_with_pools()
  local event = helper.insert("app.events", {
    title = "'Bedpres: Moon Corp'", starts_at = "now() + interval '2 days'" })
  local first = helper.insert("app.attendance_pools", {
    event_id = event, pool = "'1st year'", capacity = "10" })
  local second = helper.insert("app.attendance_pools", {
    event_id = event, pool = "'2nd-5th year'", capacity = "5" })
  helper.insert("app.attendees", {
    event_id = event, pool_id = first, name = "'Ada'", email = "'ada@example.org'" })
  helper.insert("app.attendees", {
    event_id = event, pool_id = second, name = "'Bo'", email = "'bo@example.org'" })
  return event, first, second
end

local function pools(event)
  return helper.rows("SELECT id, pool, capacity, merged FROM app.attendance_pools" ..
                     " WHERE event_id = " .. event .. " ORDER BY id")
end

local function merge(event_id)
  local id = helper.schedule("attendance.merge_pools", { event_id = event_id })
  helper.drain()
  return id
end

describe("task: attendance.merge_pools", function()
  before_each(helper.reset)

  it("moves the capacity of every pool into one merged pool", function()
    local event = event_with_pools()
    local id = merge(event)

    assert.are.equal("completed", helper.task(id).state)
    assert.are.same({
      { id = 1, pool = "1st year", capacity = 10, merged = true },
      { id = 2, pool = "2nd-5th year", capacity = 5, merged = true },
      { id = 3, pool = "merged", capacity = 15, merged = false },
    }, pools(event))
  end)

  it("moves the attendees into the merged pool", function()
    local event = event_with_pools()
    merge(event)

    local pool_ids = helper.sql("SELECT DISTINCT p.pool FROM app.attendees a" ..
                                " JOIN app.attendance_pools p ON p.id = a.pool_id")
    assert.are.same({ "merged" }, pool_ids)
    assert.are.equal("2", helper.value("SELECT count(*) FROM app.attendees"))
  end)

  it("marks the event as merged", function()
    local event = event_with_pools()
    merge(event)

    assert.are.equal("t", helper.value(
      "SELECT pools_merged_at IS NOT NULL FROM app.events WHERE id = " .. event))
  end)

  it("is idempotent: a second run changes nothing", function()
    local event = event_with_pools()
    merge(event)
    local after_first = pools(event)
    local merged_at = helper.value("SELECT pools_merged_at FROM app.events WHERE id = " .. event)

    local second = merge(event)

    assert.are.equal("completed", helper.task(second).state)
    assert.are.same(after_first, pools(event))
    assert.are.equal(merged_at,
      helper.value("SELECT pools_merged_at FROM app.events WHERE id = " .. event))
  end)

  it("leaves other events' pools alone", function()
    local event = event_with_pools()
    local other = event_with_pools()
    merge(event)

    for _, pool in ipairs(pools(other)) do
      assert.is_false(pool.merged)
      assert.are_not.equal("merged", pool.pool)
    end
    assert.are.equal(2, #pools(other))
  end)

  it("is not run before its time", function()
    local event = event_with_pools()
    local id = helper.schedule("attendance.merge_pools", { event_id = event }, "--in", "1h")
    helper.drain()

    local task = helper.task(id)
    assert.are.equal("scheduled", task.state)
    assert.are.equal(0, task.attempts)
    assert.are.equal(2, #pools(event))
  end)

  it("fails for a missing event, naming it, and is retried later", function()
    local id = merge(4242)

    local task = helper.task(id)
    assert.are.equal("scheduled", task.state)
    assert.are.equal(1, task.attempts)
    assert.matches("event 4242 does not exist", task.last_error, 1, true)
    assert.are.equal("t", helper.value(
      "SELECT run_at > now() FROM moontask.tasks WHERE id = " .. id))
  end)

  it("rolls back its writes when a later statement fails", function()
    local event = event_with_pools()
    -- Fails the last statement of the handler (stamping the event), after the
    -- merged pool, the attendees and the old pools were all written.
    helper.sql([[
      CREATE FUNCTION app.spec_fail() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'injected failure'; END $$;
      CREATE TRIGGER spec_fail BEFORE UPDATE ON app.events
        FOR EACH ROW EXECUTE FUNCTION app.spec_fail();]])
    local ok, err = pcall(function()
      local before = pools(event)
      local id = merge(event)

      local task = helper.task(id)
      assert.are.equal("scheduled", task.state)
      assert.matches("injected failure", task.last_error, 1, true)
      assert.are.same(before, pools(event))
      assert.are.equal("0", helper.value(
        "SELECT count(*) FROM app.attendees a JOIN app.attendance_pools p" ..
        " ON p.id = a.pool_id WHERE p.pool = 'merged'"))
    end)
    helper.sql("DROP TRIGGER spec_fail ON app.events; DROP FUNCTION app.spec_fail()")
    if not ok then
      error(err, 0)
    end
  end)
end)
