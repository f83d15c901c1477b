-- email.send_reminder { recipient, subject, body }
--
-- "Sends" a mail by writing it to app.outbox, which stands in for a mail
-- service in the example application. Other tasks schedule this one instead
-- of writing to the outbox themselves, so that delivery has its own retries.
-- The payload is checked against schemas/email/send_reminder.lua before the
-- task is written, so the handler can take its fields as they are.
return {
  schema = "email.send_reminder",
  max_attempts = 10,   -- a mail service's outages are usually short
  timeout = 15,
  handler = function(tx, payload, ctx)
    local recipient, subject, body = payload.recipient, payload.subject, payload.body

    -- task_id is unique in the outbox: should this task ever run again after
    -- its mail was written, the second row is skipped, not sent twice.
    local written = tx:exec(
      "INSERT INTO app.outbox (kind, recipient, subject, body, task_id)\n" ..
      "VALUES ('email', $1, $2, $3, $4) ON CONFLICT (task_id) DO NOTHING",
      recipient, subject, body, ctx.id)
    if written == 0 then
      ctx.log("warn", "mail to %s was already written by this task", recipient)
    end
  end,
}
