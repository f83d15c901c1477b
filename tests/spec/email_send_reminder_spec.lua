-- email.send_reminder through the test kit: each `it` sets its rows up, runs
-- the handler and looks at the outcome in one transaction that is rolled
-- back. What the runtime does with the task (draining it, refusing to write
-- a bad one) goes through `moontask schedule` and `moontask run --drain`
-- (spec.helper).
package.path = "./testkit/?.lua;" .. package.path
local kit = require("moontask.testkit")
local helper = require("spec.helper")

local mail = {
  recipient = "ada@example.org",
  subject = "Moon Corp Workshop starts tomorrow",
  body = "Hi Ada,\n\nSee you at 18:00.\n",
}

local function with(overrides)
  local payload = {}
  for k, v in pairs(mail) do payload[k] = v end
  for k, v in pairs(overrides) do payload[k] = v end
  return payload
end

local outbox = "SELECT kind, recipient, subject, body, task_id FROM app.outbox ORDER BY id"

-- The email.send_reminder tasks, oldest first. helper.reset empties the task
-- table before each spec, so inside a kit run the newest one is the kit's own
-- (the handler's ctx.id): the kit writes it after the setup.
local tasks = "SELECT id FROM moontask.tasks WHERE name = 'email.send_reminder' ORDER BY id"

describe("task: email.send_reminder", function()
  before_each(helper.reset)

  it("writes the mail to the outbox, tagged with its task id", function()
    local result = kit.run("email.send_reminder", mail, {
      check = { outbox = outbox, tasks = tasks },
    })

    assert.is_true(result.ok, result.error)
    assert.are.equal(1, #result.checks.tasks)
    assert.are.same({
      { kind = "email", recipient = mail.recipient, subject = mail.subject,
        body = mail.body, task_id = result.checks.tasks[1].id },
    }, result.checks.outbox)
    assert.are.same({}, result.scheduled)
  end)

  it("writes one mail per task", function()
    -- Another task already wrote the very same mail: this one writes its own.
    local result = kit.run("email.send_reminder", mail, {
      setup = string.format([[
        INSERT INTO app.outbox (recipient, subject, body, task_id)
        SELECT %s, %s, %s, moontask.schedule('email.send_reminder', %s::jsonb,
                                             now() + interval '1 hour')]],
        helper.literal(mail.recipient), helper.literal(mail.subject),
        helper.literal(mail.body), helper.literal(helper.json.encode(mail))),
      check = { outbox = outbox, tasks = tasks },
    })

    assert.is_true(result.ok, result.error)
    local ids = result.checks.tasks
    assert.are.equal(2, #ids)
    assert.are.equal(2, #result.checks.outbox)
    for i, row in ipairs(result.checks.outbox) do
      assert.are.equal(mail.subject, row.subject)
      assert.are.equal(ids[i].id, row.task_id)
    end
  end)

  it("does not write a mail twice when its task runs again", function()
    -- As if an earlier run of this task had written the row already: the
    -- kit writes the task's row after the setup, so a trigger on it writes
    -- the earlier mail with the task's id (all of it is rolled back).
    local result = kit.run("email.send_reminder", mail, {
      setup = [[
        CREATE FUNCTION app.spec_earlier_run() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO app.outbox (recipient, subject, body, task_id)
          VALUES (NEW.payload->>'recipient', 'earlier', 'earlier', NEW.id);
          RETURN NULL;
        END $$;
        CREATE TRIGGER spec_earlier_run AFTER INSERT ON moontask.tasks
          FOR EACH ROW WHEN (NEW.name = 'email.send_reminder')
          EXECUTE FUNCTION app.spec_earlier_run()]],
      check = { outbox = outbox, tasks = tasks },
    })

    assert.is_true(result.ok, result.error)
    assert.are.equal(1, #result.checks.tasks)
    local rows = result.checks.outbox
    assert.are.equal(1, #rows)
    assert.are.equal("earlier", rows[1].subject)
    assert.are.equal(result.checks.tasks[1].id, rows[1].task_id)
  end)

  -- Payloads are checked against schemas/email/send_reminder.lua, as the
  -- TaskService does: a bad one never reaches the handler, and the error
  -- names the field by its JSON Pointer.

  it("is refused without a recipient, naming the property", function()
    local payload = with({})
    payload.recipient = nil
    local result = kit.run("email.send_reminder", payload, {
      check = { outbox = "SELECT count(*) AS n FROM app.outbox" },
    })

    assert.is_false(result.valid)
    assert.is_false(result.ok)
    assert.matches('(root): missing required property "recipient"', result.error, 1, true)
    assert.are.equal(0, result.checks.outbox[1].n)
  end)

  it("is refused with a JSON null recipient, naming its pointer", function()
    local result = kit.run("email.send_reminder",
                           '{"recipient": null, "subject": "s", "body": "b"}',
                           { check = { outbox = "SELECT count(*) AS n FROM app.outbox" } })

    assert.is_false(result.valid)
    assert.matches('/recipient: is not of type "string"', result.error, 1, true)
    assert.are.equal(0, result.checks.outbox[1].n)
  end)

  it("is refused with a recipient that is not an email address", function()
    local ok, errors = kit.validate("email.send_reminder",
                                    with({ recipient = "ada at example.org" }))

    assert.is_false(ok)
    assert.matches('/recipient: is not a valid "email"', errors, 1, true)
  end)

  -- The runtime's side: what becomes of the task itself.

  it("is completed by a drain, its mail tagged with the scheduled task's id", function()
    local id = helper.schedule("email.send_reminder", mail)
    helper.drain()

    assert.are.equal("completed", helper.task(id).state)
    assert.are.same({
      { kind = "email", recipient = mail.recipient, subject = mail.subject,
        body = mail.body, task_id = id },
    }, helper.rows(outbox))
  end)

  it("refuses to schedule a bad payload, writing no task", function()
    local code, _, err = helper.moontask("schedule", "email.send_reminder",
                                         '{"recipient": null, "subject": "s", "body": "b"}')

    assert.are.equal(2, code)
    assert.matches("/recipient", err, 1, true)
    assert.are.same({}, helper.tasks("email.send_reminder"))
  end)
end)
