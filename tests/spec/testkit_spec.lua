-- The test kit itself: what `moontask try` reports, and that nothing it did
-- outlives the run. Uses the example application's tasks; helper.sql looks
-- at the database from a separate connection.
package.path = "./testkit/?.lua;" .. package.path
local kit = require("moontask.testkit")
local helper = require("spec.helper")

local mail = {
  recipient = "ada@example.org",
  subject = "Moon Corp Workshop starts tomorrow",
  body = "Hi Ada,\n\nSee you at 18:00.\n",
}

-- An event, a pool, an attendee and a payment with id 1 that is pending and
-- past its deadline: what payments.verify expires.
local late_payment = [[
  INSERT INTO app.events (id, title, starts_at)
  VALUES (1, 'Moon Corp Workshop', now() + interval '7 days');
  INSERT INTO app.attendance_pools (id, event_id, pool, capacity)
  VALUES (1, 1, 'all', 20);
  INSERT INTO app.attendees (id, event_id, pool_id, name, email)
  VALUES (1, 1, 1, 'Ada', 'ada@example.org');
  INSERT INTO app.payments (id, attendee_id, event_id, amount, status, deadline)
  VALUES (1, 1, 1, 25050, 'pending', now() - interval '1 minute')]]

describe("moontask.testkit", function()
  setup(helper.reset)

  it("shows a handler's writes to the checks and keeps none of them", function()
    local result = kit.run("email.send_reminder", mail, {
      check = { "SELECT recipient, subject, task_id FROM app.outbox" },
    })

    assert.is_true(result.valid)
    assert.is_true(result.ok, result.error)
    assert.is_nil(result.error)
    assert.are.equal(1, #result.checks[1])
    assert.are.equal(mail.recipient, result.checks[1][1].recipient)
    assert.are.equal(mail.subject, result.checks[1][1].subject)
    assert.is_number(result.checks[1][1].task_id)
    assert.are.same({ "0" }, helper.sql("SELECT count(*) FROM app.outbox"))
    assert.are.same({ "0" }, helper.sql("SELECT count(*) FROM moontask.tasks"))
  end)

  it("keeps no setup rows either", function()
    local result = kit.run("payments.verify", { payment_id = 1 }, {
      setup = late_payment,
      check = { payment = "SELECT status FROM app.payments WHERE id = 1" },
    })

    assert.is_true(result.ok, result.error)
    assert.are.equal("expired", result.checks.payment[1].status)
    assert.are.same({ "0" }, helper.sql("SELECT count(*) FROM app.payments"))
    assert.are.same({ "0" }, helper.sql("SELECT count(*) FROM app.attendees"))
  end)

  it("reports the follow-up tasks the handler scheduled", function()
    local result = kit.run("payments.verify", { payment_id = 1 }, { setup = late_payment })

    assert.are.equal(1, #result.scheduled)
    local mails = result:scheduled_named("email.send_reminder")
    assert.are.equal(1, #mails)
    assert.are.equal("ada@example.org", mails[1].payload.recipient)
    assert.is_string(mails[1].run_at)
    assert.are.same({}, result:scheduled_named("payments.verify"))
    assert.are.same({ "0" }, helper.sql("SELECT count(*) FROM moontask.tasks"))
  end)

  it("refuses an invalid payload by its JSON Pointer, without running the handler", function()
    local result = kit.run("email.send_reminder", {
      recipient = "ada@example.org", subject = "Hi", body = "x", cc = "bob@example.org",
    }, { check = { "SELECT count(*) AS n FROM app.outbox" } })

    assert.is_false(result.valid)
    assert.is_false(result.ok)
    assert.matches("/cc", result.error, 1, true)
    assert.are.equal(0, result.checks[1][1].n)
    assert.are.same({}, result.scheduled)
  end)

  it("refuses an unknown task", function()
    local result = kit.run("no_such.task", {})

    assert.is_false(result.valid)
    assert.matches('unknown task "no_such.task"', result.error, 1, true)
  end)

  it("reports a handler's error with its message and traceback", function()
    local result = kit.run("payments.verify", { payment_id = 777 })

    assert.is_true(result.valid)
    assert.is_false(result.ok)
    assert.matches("payment 777 does not exist", result.error, 1, true)
    assert.matches("stack traceback", result.error, 1, true)
  end)

  it("undoes a failed handler's writes before the checks, as the runtime would", function()
    local result = kit.run("payments.verify", { payment_id = 1 }, {
      setup = { late_payment, [[
        CREATE FUNCTION app.kit_fail() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'injected failure'; END $$;
        CREATE TRIGGER kit_fail BEFORE UPDATE ON app.attendees
          FOR EACH ROW EXECUTE FUNCTION app.kit_fail()]] },
      check = { "SELECT status FROM app.payments WHERE id = 1" },
    })

    assert.is_false(result.ok)
    assert.matches("injected failure", result.error, 1, true)
    assert.are.equal("pending", result.checks[1][1].status)
    assert.are.same({}, result.scheduled)
    assert.are.same({ "0" }, helper.sql(
      "SELECT count(*) FROM pg_proc WHERE proname = 'kit_fail'"))
  end)

  it("raises when a setup statement fails", function()
    assert.has_error(function()
      kit.run("email.send_reminder", mail, { setup = "SELECT * FROM app.no_such_table" })
    end)
  end)

  it("validates payloads without running anything", function()
    assert.is_true(kit.validate("email.send_reminder", mail))
    local ok, errors = kit.validate("email.send_reminder", { recipient = "nope" })
    assert.is_false(ok)
    assert.matches("/recipient", errors, 1, true)
  end)
end)
