-- email.send_reminder { recipient, subject, body }
--
-- Sends one mail through the mail provider's HTTP API, and records it in
-- app.outbox. Other tasks schedule this one instead of sending mail
-- themselves, so that delivery has its own retries. The payload is checked
-- against schemas/email/send_reminder.lua before the task is written, so
-- the handler can take its fields as they are.
--
-- The provider is described by two environment variables, which config.lua
-- must allow handlers to read:
--
--   env = { "EMAIL_API_URL", "EMAIL_API_KEY" },
--
--   EMAIL_API_URL  the provider's endpoint for sending one message, e.g.
--                  https://api.mailer.example/v1/messages
--   EMAIL_API_KEY  the API key, sent as a bearer token
--
-- The provider gets { from, to = { recipient }, subject, text } as JSON and
-- answers 2xx with { id } once it has taken the mail. Without
-- EMAIL_API_URL (a development machine) no mail leaves: it stays in
-- app.outbox, where the example application's specs read it.
local http, json = moontask.http, moontask.json

local FROM = "Moon Corp Events <events@mooncorp.example>"

-- Longer than any provider needs to answer, and well inside the task's
-- timeout, so that a slow provider fails the attempt with its own message.
local API_TIMEOUT = 10

return {
  schema = "email.send_reminder",
  max_attempts = 10,   -- a mail service's outages are usually short
  timeout = 15,
  handler = function(tx, payload, ctx)
    local recipient, subject, body = payload.recipient, payload.subject, payload.body

    -- task_id is unique in the outbox: should this task ever run again after
    -- its mail was written and sent (its completion lost in a crash), the
    -- row is there already and the mail is not sent twice.
    local written = tx:exec(
      "INSERT INTO app.outbox (kind, recipient, subject, body, task_id)\n" ..
      "VALUES ('email', $1, $2, $3, $4) ON CONFLICT (task_id) DO NOTHING",
      recipient, subject, body, ctx.id)
    if written == 0 then
      ctx.log("warn", "mail to %s was already written by this task", recipient)
      return
    end

    local url = ctx.env("EMAIL_API_URL")
    if url == nil then
      ctx.log("info", "no EMAIL_API_URL: the mail to %s stays in app.outbox",
              recipient)
      return
    end
    local key = ctx.env("EMAIL_API_KEY")
    if key == nil then
      error("EMAIL_API_URL is set but EMAIL_API_KEY is not")
    end

    -- The mail is sent before the outbox row commits. If the commit fails
    -- after the provider took the mail, the task runs again and sends the
    -- same Idempotency-Key, which the provider answers without sending a
    -- second mail.
    local res, err = http.post(url, {
      from = FROM,
      to = { recipient },
      subject = subject,
      text = body,
    }, {
      headers = {
        Authorization = "Bearer " .. key,
        ["Idempotency-Key"] = "email.send_reminder-" .. ctx.id,
      },
      timeout = API_TIMEOUT,
    })
    if res == nil then
      error("mail provider unreachable: " .. err)
    elseif res.status < 200 or res.status > 299 then
      -- Raising rolls the outbox row back and retries later; a refusal that
      -- no retry will cure shows in last_error until max_attempts runs out.
      error(string.format("mail provider answered %d: %s", res.status,
                          res.body:sub(1, 200)))
    end
    local answer = json.decode(res.body)
    ctx.log("info", "mail to %s accepted by the provider as %s", recipient,
            type(answer) == "table" and tostring(answer.id) or "(no id)")
  end,
}
