-- email.send_reminder { recipient, subject, body }
--
-- "Sends" a mail by writing it to app.outbox, which stands in for a mail
-- service in the example application. Other tasks schedule this one instead
-- of writing to the outbox themselves, so that delivery has its own retries.
local function required_string(payload, field)
  local v = payload[field]
  if type(v) ~= "string" or v == "" then
    error(string.format("payload.%s must be a non-empty string, got %s",
                        field, v == json.null and "null" or tostring(v)))
  end
  return v
end

return {
  max_attempts = 10,   -- a mail service's outages are usually short
  timeout = 15,
  handler = function(tx, payload, ctx)
    local recipient = required_string(payload, "recipient")
    local subject = required_string(payload, "subject")
    local body = required_string(payload, "body")
    if not recipient:find("^[^@%s]+@[^@%s]+$") then
      error(string.format("payload.recipient %q is not an email address", recipient))
    end

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
