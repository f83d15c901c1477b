-- newsletter.weekly: the handler through the test kit (rolled back after
-- each `it`); its weekly schedule through the runtime, which upserts the
-- schedule a task file declares.
package.path = "./testkit/?.lua;" .. package.path
local kit = require("moontask.testkit")
local helper = require("spec.helper")

local list = { list = "members@example.org" }

-- Events relative to now, which is the fire time the kit gives the task.
local events = [[
  INSERT INTO app.events (id, title, starts_at) VALUES
    (901, 'Bedpres: Moon Corp', now() + interval '1 day'),
    (902, 'Hackathon', now() + interval '3 days'),
    (903, 'Too late: next week', now() + interval '8 days'),
    (904, 'Already over', now() - interval '1 day')]]

local outbox = "SELECT kind, recipient, subject, body, task_id FROM app.outbox"

describe("task: newsletter.weekly", function()
  before_each(function() helper.reset() end)

  it("gathers the coming week's events into one mail to the list", function()
    local result = kit.run("newsletter.weekly", list, { setup = events, check = outbox })
    assert.is_true(result.ok, result.error)
    local mails = result.checks[1]
    assert.are.equal(1, #mails)
    assert.are.equal("members@example.org", mails[1].recipient)
    assert.are.equal("This week: 2 events", mails[1].subject)
    assert.matches("Bedpres: Moon Corp", mails[1].body, 1, true)
    assert.matches("Hackathon", mails[1].body, 1, true)
  end)

  it("leaves out past events and those after the week", function()
    local result = kit.run("newsletter.weekly", list, { setup = events, check = outbox })
    assert.is_true(result.ok, result.error)
    assert.is_nil(result.checks[1][1].body:find("Too late", 1, true))
    assert.is_nil(result.checks[1][1].body:find("Already over", 1, true))
  end)

  it("says so when the week has no events", function()
    local result = kit.run("newsletter.weekly", list, { check = outbox })
    assert.is_true(result.ok, result.error)
    assert.are.equal("This week: 0 events", result.checks[1][1].subject)
  end)

  it("refuses a payload without a list address, naming it", function()
    local valid, errors = kit.validate("newsletter.weekly", {})
    assert.is_false(valid)
    assert.matches('missing required property "list"', errors, 1, true)
  end)

  it("is scheduled every Monday at 09:00 Oslo time once a runtime ran", function()
    helper.drain()
    local row = helper.row(
      "SELECT expression, tz, payload->>'list' AS list,\n" ..
      "       to_char(next_fire_at AT TIME ZONE 'Europe/Oslo', 'ID HH24:MI') AS next\n" ..
      "  FROM moontask.schedules WHERE task = 'newsletter.weekly'")
    assert.are.equal("0 9 * * MON", row.expression)
    assert.are.equal("Europe/Oslo", row.tz)
    assert.are.equal("members@example.org", row.list)
    assert.are.equal("1 09:00", row.next) -- ISO day 1 is Monday
  end)
end)
