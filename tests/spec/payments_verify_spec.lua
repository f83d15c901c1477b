-- payments.verify through the test kit: each `it` sets its rows up, runs the
-- handler and looks at the outcome in one transaction that is rolled back.
package.path = "./testkit/?.lua;" .. package.path
local kit = require("moontask.testkit")
local helper = require("spec.helper")

-- SQL for an attendee (id 1) of an event (id 1) with payment 1 in `status`
-- whose deadline is `deadline` (an SQL expression). The tables are empty:
-- helper.reset runs before each spec, and the kit leaves nothing behind.
local function payment(status, deadline)
  return string.format([[
    INSERT INTO app.events (id, title, starts_at)
    VALUES (1, 'Moon Corp Workshop', now() + interval '7 days');
    INSERT INTO app.attendance_pools (id, event_id, pool, capacity)
    VALUES (1, 1, 'all', 20);
    INSERT INTO app.attendees (id, event_id, pool_id, name, email)
    VALUES (1, 1, 1, 'Ada', 'ada@example.org');
    INSERT INTO app.payments (id, attendee_id, event_id, amount, status,
                              deadline, paid_at)
    VALUES (1, 1, 1, 25050, %s, %s, %s)]],
    helper.literal(status), deadline, status == "paid" and "now()" or "NULL")
end

local checks = {
  status = "SELECT status FROM app.payments WHERE id = 1",
  released = "SELECT released_at IS NOT NULL AS released FROM app.attendees WHERE id = 1",
  outbox = "SELECT count(*) AS n FROM app.outbox",
}

-- Runs payments.verify for payment 1 after `setup` (SQL text or a list).
local function verify(setup)
  return kit.run("payments.verify", { payment_id = 1 }, { setup = setup, check = checks })
end

local function status(result)
  return result.checks.status[1].status
end

local function released(result)
  return result.checks.released[1].released
end

describe("task: payments.verify", function()
  before_each(helper.reset)

  it("expires a pending payment whose deadline has passed", function()
    local result = verify(payment("pending", "now() - interval '1 minute'"))

    assert.is_true(result.ok, result.error)
    assert.are.equal("expired", status(result))
  end)

  it("releases the spot of an attendee who did not pay", function()
    local result = verify(payment("pending", "now() - interval '1 minute'"))

    assert.is_true(released(result))
  end)

  it("tells the attendee by mail, through email.send_reminder", function()
    local result = verify(payment("pending", "now() - interval '1 minute'"))

    local mails = result:scheduled_named("email.send_reminder")
    assert.are.equal(1, #mails)
    assert.are.equal("ada@example.org", mails[1].payload.recipient)
    assert.are.equal("Your spot at Moon Corp Workshop was released", mails[1].payload.subject)
    assert.matches("250.50 kr", mails[1].payload.body, 1, true)
    assert.is_true(kit.validate("email.send_reminder", mails[1].payload))
    -- The mail task writes the outbox, not this one.
    assert.are.equal(0, result.checks.outbox[1].n)
  end)

  it("leaves a paid payment alone and schedules nothing", function()
    local result = verify(payment("paid", "now() - interval '1 minute'"))

    assert.is_true(result.ok, result.error)
    assert.are.equal("paid", status(result))
    assert.is_false(released(result))
    assert.are.same({}, result.scheduled)
    assert.are.equal(0, result.checks.outbox[1].n)
  end)

  it("expires a payment only once", function()
    -- The state a first run leaves: expired, the spot released.
    local result = verify({ payment("pending", "now() - interval '1 minute'"),
      "UPDATE app.payments SET status = 'expired' WHERE id = 1",
      "UPDATE app.attendees SET released_at = now() - interval '1 minute' WHERE id = 1" })

    assert.is_true(result.ok, result.error)
    assert.are.equal("expired", status(result))
    assert.are.same({}, result.scheduled)
  end)

  it("checks again at the new deadline when the deadline was extended", function()
    local result = kit.run("payments.verify", { payment_id = 1 }, {
      setup = payment("pending", "now() + interval '1 hour'"),
      check = {
        status = checks.status,
        released = checks.released,
        -- The follow-up is the newest payments.verify row (the older one is
        -- the kit's own row for this run).
        at_deadline = "SELECT abs(extract(epoch FROM t.run_at - p.deadline)) < 0.001 AS yes" ..
                      "  FROM moontask.tasks t, app.payments p" ..
                      " WHERE t.name = 'payments.verify' AND p.id = 1" ..
                      " ORDER BY t.id DESC LIMIT 1",
      },
    })

    assert.is_true(result.ok, result.error)
    assert.are.equal("pending", status(result))
    assert.is_false(released(result))
    assert.are.equal(1, #result.scheduled)
    local again = result:scheduled_named("payments.verify")
    assert.are.equal(1, #again)
    assert.are.equal(1, again[1].payload.payment_id)
    assert.is_true(result.checks.at_deadline[1].yes)
    assert.are.same({}, result:scheduled_named("email.send_reminder"))
  end)

  -- When it runs is the runtime's business, not the handler's: this one
  -- goes through `moontask schedule` and `moontask run --drain`.
  it("scheduled at the deadline, does not run before it", function()
    local event = helper.insert("app.events", {
      title = "'Moon Corp Workshop'", starts_at = "now() + interval '7 days'" })
    local pool = helper.insert("app.attendance_pools", {
      event_id = event, pool = "'all'", capacity = "20" })
    local attendee = helper.insert("app.attendees", {
      event_id = event, pool_id = pool, name = "'Ada'", email = "'ada@example.org'" })
    local p = helper.insert("app.payments", {
      attendee_id = attendee, event_id = event, amount = "25050",
      status = "'pending'", deadline = "date_trunc('second', now()) + interval '1 hour'" })
    local deadline = helper.value(
      "SELECT to_char(deadline AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')" ..
      "  FROM app.payments WHERE id = " .. p)
    local id = helper.schedule("payments.verify", { payment_id = p }, "--at", deadline)
    helper.drain()

    local task = helper.task(id)
    assert.are.equal("scheduled", task.state)
    assert.are.equal(0, task.attempts)
    assert.are.equal("pending", helper.value("SELECT status FROM app.payments WHERE id = " .. p))
    assert.are.equal("t", helper.value(
      "SELECT t.run_at = p.deadline FROM moontask.tasks t, app.payments p" ..
      " WHERE t.id = " .. id .. " AND p.id = " .. p))
  end)

  it("fails for a missing payment, naming it", function()
    local result = kit.run("payments.verify", { payment_id = 777 })

    assert.is_true(result.valid)
    assert.is_false(result.ok)
    assert.matches("payment 777 does not exist", result.error, 1, true)
  end)

  it("refuses a payload without a payment id", function()
    local result = kit.run("payments.verify", {})

    assert.is_false(result.valid)
    assert.matches("payment_id", result.error, 1, true)
  end)

  it("rolls back the expiry when releasing the spot fails", function()
    local result = verify({ payment("pending", "now() - interval '1 minute'"), [[
      CREATE FUNCTION app.spec_fail() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'injected failure'; END $$;
      CREATE TRIGGER spec_fail BEFORE UPDATE ON app.attendees
        FOR EACH ROW EXECUTE FUNCTION app.spec_fail()]] })

    assert.is_false(result.ok)
    assert.matches("injected failure", result.error, 1, true)
    assert.are.equal("pending", status(result))
    assert.is_false(released(result))
    assert.are.same({}, result.scheduled)
  end)
end)
