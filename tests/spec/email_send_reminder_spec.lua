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

local function outbox()
  return helper.rows("SELECT kind, recipient, subject, body, task_id FROM app.outbox ORDER BY id")
end

describe("task: email.send_reminder", function()
  before_each(helper.reset)

  it("writes the mail to the outbox, tagged with its task id", function()
    local id = helper.schedule("email.send_reminder", mail)
    helper.drain()

    assert.are.equal("completed", helper.task(id).state)
    assert.are.same({
      { kind = "email", recipient = mail.recipient, subject = mail.subject,
        body = mail.body, task_id = id },
    }, outbox())
  end)

  it("writes one mail per task", function()
    local first = helper.schedule("email.send_reminder", mail)
    local second = helper.schedule("email.send_reminder", mail)
    helper.drain()

    local rows = outbox()
    assert.are.equal(2, #rows)
    local ids = { rows[1].task_id, rows[2].task_id }
    table.sort(ids)
    assert.are.same({ first, second }, ids)
  end)

  it("does not write a mail twice when its task runs again", function()
    local id = helper.schedule("email.send_reminder", mail, "--in", "1h")
    -- As if an earlier run of this task had written the row already.
    helper.sql(string.format(
      "INSERT INTO app.outbox (recipient, subject, body, task_id) VALUES (%s, 'earlier', 'earlier', %d)",
      helper.literal(mail.recipient), id))
    helper.sql("UPDATE moontask.tasks SET run_at = now() WHERE id = " .. id)
    helper.drain()

    assert.are.equal("completed", helper.task(id).state)
    local rows = outbox()
    assert.are.equal(1, #rows)
    assert.are.equal("earlier", rows[1].subject)
  end)

  -- The TaskService checks payloads against schemas/email/send_reminder.lua:
  -- a bad one is refused before it is written, naming the field.
  local function refused(payload)
    local code, _, err = helper.moontask("schedule", "email.send_reminder", payload)
    assert.are.equal(2, code)
    assert.are.same({}, helper.tasks("email.send_reminder"))
    return err
  end

  it("is refused without a recipient, naming the property", function()
    local payload = with({})
    payload.recipient = nil
    assert.matches('(root): missing required property "recipient"',
                   refused(require("dkjson").encode(payload)), 1, true)
  end)

  it("is refused with a JSON null recipient, naming its pointer", function()
    assert.matches('/recipient: is not of type "string"',
                   refused('{"recipient": null, "subject": "s", "body": "b"}'), 1, true)
  end)

  it("is refused with a recipient that is not an email address", function()
    assert.matches('/recipient: is not a valid "email"',
                   refused('{"recipient": "ada at example.org", "subject": "s", "body": "b"}'),
                   1, true)
  end)
end)
