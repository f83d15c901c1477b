local helper = require("spec.helper")

-- An attendee of an event with a payment in `status` whose deadline is
-- `deadline` (an SQL expression). Returns the payment's and attendee's ids.
local function payment(status, deadline)
  local event = helper.insert("app.events", {
    title = "'Moon Corp Workshop'", starts_at = "now() + interval '7 days'" })
  local pool = helper.insert("app.attendance_pools", {
    event_id = event, pool = "'all'", capacity = "20" })
  local attendee = helper.insert("app.attendees", {
    event_id = event, pool_id = pool, name = "'Ada'", email = "'ada@example.org'" })
  local id = helper.insert("app.payments", {
    attendee_id = attendee, event_id = event, amount = "25050",
    status = helper.literal(status), deadline = deadline,
    paid_at = status == "paid" and "now()" or "NULL" })
  return id, attendee
end

local function verify(payment_id)
  local id = helper.schedule("payments.verify", { payment_id = payment_id })
  helper.drain()
  return id
end

local function status(payment_id)
  return helper.value("SELECT status FROM app.payments WHERE id = " .. payment_id)
end

local function released(attendee)
  return helper.value("SELECT released_at IS NOT NULL FROM app.attendees WHERE id = " .. attendee) == "t"
end

describe("task: payments.verify", function()
  before_each(helper.reset)

  it("expires a pending payment whose deadline has passed", function()
    local p = payment("pending", "now() - interval '1 minute'")
    local id = verify(p)

    assert.are.equal("completed", helper.task(id).state)
    assert.are.equal("expired", status(p))
  end)

  it("releases the spot of an attendee who did not pay", function()
    local p, attendee = payment("pending", "now() - interval '1 minute'")
    verify(p)

    assert.is_true(released(attendee))
  end)

  it("tells the attendee by mail, through email.send_reminder", function()
    local p = payment("pending", "now() - interval '1 minute'")
    verify(p)

    local mails = helper.tasks("email.send_reminder")
    assert.are.equal(1, #mails)
    assert.are.equal("completed", mails[1].state)
    assert.are.equal("ada@example.org", mails[1].payload.recipient)

    local outbox = helper.rows("SELECT recipient, subject, body, task_id FROM app.outbox")
    assert.are.equal(1, #outbox)
    assert.are.equal("ada@example.org", outbox[1].recipient)
    assert.are.equal(mails[1].id, outbox[1].task_id)
    assert.are.equal("Your spot at Moon Corp Workshop was released", outbox[1].subject)
    assert.matches("250.50 kr", outbox[1].body, 1, true)
  end)

  it("leaves a paid payment alone and schedules nothing", function()
    local p, attendee = payment("paid", "now() - interval '1 minute'")
    local id = verify(p)

    assert.are.equal("completed", helper.task(id).state)
    assert.are.equal("paid", status(p))
    assert.is_false(released(attendee))
    assert.are.same({ helper.task(id) }, helper.rows("SELECT * FROM moontask.tasks"))
    assert.are.equal("0", helper.value("SELECT count(*) FROM app.outbox"))
  end)

  it("expires a payment only once", function()
    local p = payment("pending", "now() - interval '1 minute'")
    verify(p)
    local second = verify(p)

    assert.are.equal("completed", helper.task(second).state)
    assert.are.equal("expired", status(p))
    assert.are.equal(1, #helper.tasks("email.send_reminder"))
    assert.are.equal("1", helper.value("SELECT count(*) FROM app.outbox"))
  end)

  it("checks again at the new deadline when the deadline was extended", function()
    local p, attendee = payment("pending", "now() + interval '1 hour'")
    local id = verify(p)

    assert.are.equal("completed", helper.task(id).state)
    assert.are.equal("pending", status(p))
    assert.is_false(released(attendee))
    local again = helper.tasks("payments.verify")
    assert.are.equal(2, #again)
    assert.are.equal("scheduled", again[2].state)
    assert.are.equal(p, again[2].payload.payment_id)
    assert.are.equal("t", helper.value(
      "SELECT abs(extract(epoch FROM t.run_at - p.deadline)) < 0.001" ..
      "  FROM moontask.tasks t, app.payments p" ..
      " WHERE t.id = " .. again[2].id .. " AND p.id = " .. p))
    assert.are.equal(0, #helper.tasks("email.send_reminder"))
  end)

  it("scheduled at the deadline, does not run before it", function()
    local p = payment("pending", "date_trunc('second', now()) + interval '1 hour'")
    local deadline = helper.value(
      "SELECT to_char(deadline AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')" ..
      "  FROM app.payments WHERE id = " .. p)
    local id = helper.schedule("payments.verify", { payment_id = p }, "--at", deadline)
    helper.drain()

    local task = helper.task(id)
    assert.are.equal("scheduled", task.state)
    assert.are.equal(0, task.attempts)
    assert.are.equal("pending", status(p))
    assert.are.equal("t", helper.value(
      "SELECT t.run_at = p.deadline FROM moontask.tasks t, app.payments p" ..
      " WHERE t.id = " .. id .. " AND p.id = " .. p))
  end)

  it("fails for a missing payment, naming it", function()
    local id = verify(777)

    local task = helper.task(id)
    assert.are.equal("scheduled", task.state)
    assert.are.equal(1, task.attempts)
    assert.matches("payment 777 does not exist", task.last_error, 1, true)
  end)

  it("rolls back the expiry when releasing the spot fails", function()
    local p, attendee = payment("pending", "now() - interval '1 minute'")
    helper.sql([[
      CREATE FUNCTION app.spec_fail() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'injected failure'; END $$;
      CREATE TRIGGER spec_fail BEFORE UPDATE ON app.attendees
        FOR EACH ROW EXECUTE FUNCTION app.spec_fail();]])
    local ok, err = pcall(function()
      local id = verify(p)

      local task = helper.task(id)
      assert.are.equal("scheduled", task.state)
      assert.matches("injected failure", task.last_error, 1, true)
      assert.are.equal("pending", status(p))
      assert.is_false(released(attendee))
      assert.are.equal(0, #helper.tasks("email.send_reminder"))
    end)
    helper.sql("DROP TRIGGER spec_fail ON app.attendees; DROP FUNCTION app.spec_fail()")
    if not ok then
      error(err, 0)
    end
  end)
end)
