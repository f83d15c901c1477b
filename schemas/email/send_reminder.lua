-- Payload of email.send_reminder: one mail to one recipient.
return {
  type = "object",
  properties = {
    recipient = { type = "string", format = "email", maxLength = 254 },
    subject = { type = "string", minLength = 1, maxLength = 200 },
    body = { type = "string", minLength = 1 },
  },
  required = { "recipient", "subject", "body" },
  additionalProperties = false,
}
