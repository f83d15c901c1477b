-- email.send_reminder through the test kit: each `it` sets its rows up, runs
-- the handler and looks at the outcome in one transaction that is rolled
-- back. The mail provider is a local fake (kit.fake_http) that records what
-- the handler sends it and answers what the spec says; the handler finds
-- it through EMAIL_API_URL and EMAIL_API_KEY (kit.run's env). What the
-- runtime does with the task (draining it, refusing to write a bad one)
-- goes through `moontask schedule` and `moontask run --drain`.
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

local KEY = "test-key-8f14e45f"

-- Quotes a word for the shell.
local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

describe("task: email.send_reminder", function()
  local api -- the mail provider's fake

  -- The configuration that points the handler at the fake.
  local function provider()
    return { EMAIL_API_URL = api.url .. "/v1/messages", EMAIL_API_KEY = KEY }
  end

  setup(function()
    api = kit.fake_http()
  end)

  teardown(function()
    api:stop()
  end)

  before_each(function()
    helper.reset()
    api:reset()
    api:reply({ status = 202, json = { id = "msg_0001" } })
  end)

  it("sends the mail to the provider's API as JSON, with the key", function()
    local result = kit.run("email.send_reminder", mail, {
      env = provider(),
      check = { tasks = tasks },
    })

    assert.is_true(result.ok, result.error)
    local sent = api:requests()
    assert.are.equal(1, #sent)
    assert.are.equal("POST", sent[1].method)
    assert.are.equal("/v1/messages", sent[1].path)
    assert.are.equal("Bearer " .. KEY, sent[1].headers.authorization)
    assert.are.equal("application/json", sent[1].headers["content-type"])
    assert.are.same({
      from = "Moon Corp Events <events@mooncorp.example>",
      to = { mail.recipient },
      subject = mail.subject,
      text = mail.body,
    }, sent[1].json)
    -- A run again after a lost commit sends the same key, which the
    -- provider answers without a second mail.
    assert.are.equal("email.send_reminder-" .. result.checks.tasks[1].id,
                     sent[1].headers["idempotency-key"])
    assert.matches("accepted by the provider as msg_0001", result.log, 1, true)
  end)

  it("records the sent mail in the outbox, tagged with its task id", function()
    local result = kit.run("email.send_reminder", mail, {
      env = provider(),
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

  it("fails the attempt and records nothing when the provider refuses the mail", function()
    api:reply({ status = 422, json = { error = "recipient is on the suppression list" } })

    local result = kit.run("email.send_reminder", mail, {
      env = provider(),
      check = { outbox = "SELECT count(*) AS n FROM app.outbox" },
    })

    assert.is_true(result.valid)
    assert.is_false(result.ok)
    assert.matches("mail provider answered 422: ", result.error, 1, true)
    assert.matches("suppression list", result.error, 1, true)
    assert.are.equal(0, result.checks.outbox[1].n)
    assert.are.equal(1, #api:requests())
  end)

  it("fails the attempt when the provider is down, for a retry", function()
    api:reply({ status = 503, body = "upstream unavailable" })

    local result = kit.run("email.send_reminder", mail, {
      env = provider(),
      check = { outbox = "SELECT count(*) AS n FROM app.outbox" },
    })

    assert.is_false(result.ok)
    assert.matches("mail provider answered 503: upstream unavailable", result.error, 1, true)
    assert.are.equal(0, result.checks.outbox[1].n)
  end)

  it("fails the attempt when the provider cannot be reached", function()
    -- A port nothing listens on any more.
    local gone = kit.fake_http()
    local url = gone.url
    gone:stop()

    local result = kit.run("email.send_reminder", mail, {
      env = { EMAIL_API_URL = url .. "/v1/messages", EMAIL_API_KEY = KEY },
      check = { outbox = "SELECT count(*) AS n FROM app.outbox" },
    })

    assert.is_false(result.ok)
    assert.matches("mail provider unreachable: POST " .. url .. ": ", result.error, 1, true)
    assert.are.equal(0, result.checks.outbox[1].n)
    -- The key is no part of any message.
    assert.is_nil(result.error:find(KEY, 1, true))
    assert.is_nil(result.log:find(KEY, 1, true))
  end)

  it("keeps the mail in the outbox when no provider is configured", function()
    local result = kit.run("email.send_reminder", mail, {
      check = { outbox = outbox, tasks = tasks },
    })

    assert.is_true(result.ok, result.error)
    assert.are.equal(1, #result.checks.outbox)
    assert.are.equal(result.checks.tasks[1].id, result.checks.outbox[1].task_id)
    assert.matches("no EMAIL_API_URL: the mail to ada@example.org stays in app.outbox",
                   result.log, 1, true)
    assert.are.same({}, api:requests())
  end)

  it("writes and sends one mail per task", function()
    -- Another task already wrote the very same mail: this one writes its own.
    local result = kit.run("email.send_reminder", mail, {
      env = provider(),
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
    assert.are.equal(1, #api:requests())
  end)

  it("neither writes nor sends a mail twice when its task runs again", function()
    -- As if an earlier run of this task had written and sent the mail: the
    -- kit writes the task's row after the setup, so a trigger on it writes
    -- the earlier mail with the task's id (all of it is rolled back).
    local result = kit.run("email.send_reminder", mail, {
      env = provider(),
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
    assert.are.same({}, api:requests())
  end)

  -- Payloads are checked against schemas/email/send_reminder.lua, as the
  -- TaskService does: a bad one never reaches the handler, and the error
  -- names the field by its JSON Pointer.

  it("is refused without a recipient, naming the property", function()
    local payload = with({})
    payload.recipient = nil
    local result = kit.run("email.send_reminder", payload, {
      env = provider(),
      check = { outbox = "SELECT count(*) AS n FROM app.outbox" },
    })

    assert.is_false(result.valid)
    assert.is_false(result.ok)
    assert.matches('(root): missing required property "recipient"', result.error, 1, true)
    assert.are.equal(0, result.checks.outbox[1].n)
    assert.are.same({}, api:requests())
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

  it("is completed by a drain, its mail sent and recorded", function()
    local id = helper.schedule("email.send_reminder", mail)

    -- The runtime with a configuration that allows the provider's
    -- variables, and the variables set.
    local config = os.tmpname()
    local f = assert(io.open(config, "w"))
    f:write('return { backend = "postgres", env = { "EMAIL_API_URL", "EMAIL_API_KEY" } }\n')
    f:close()
    local env = provider()
    local command = table.concat({
      "env", quote("EMAIL_API_URL=" .. env.EMAIL_API_URL),
      quote("EMAIL_API_KEY=" .. env.EMAIL_API_KEY),
      "timeout", tostring(helper.drain_timeout), quote(helper.bin),
      "--config", quote(config), "--database-url", quote(helper.database_url),
      "--tasks", "tasks", "run", "--drain", "--workers", "2", "2>&1" }, " ")
    local p = assert(io.popen(command, "r"))
    local out = p:read("a")
    local _, _, code = p:close()
    os.remove(config)

    assert.are.equal(0, code, out)
    assert.are.equal("completed", helper.task(id).state)
    assert.are.same({
      { kind = "email", recipient = mail.recipient, subject = mail.subject,
        body = mail.body, task_id = id },
    }, helper.rows(outbox))
    local sent = api:requests()
    assert.are.equal(1, #sent)
    assert.are.equal("email.send_reminder-" .. id, sent[1].headers["idempotency-key"])
  end)

  it("refuses to schedule a bad payload, writing no task", function()
    local code, _, err = helper.moontask("schedule", "email.send_reminder",
                                         '{"recipient": null, "subject": "s", "body": "b"}')

    assert.are.equal(2, code)
    assert.matches("/recipient", err, 1, true)
    assert.are.same({}, helper.tasks("email.send_reminder"))
  end)
end)
