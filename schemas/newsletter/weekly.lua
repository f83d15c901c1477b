-- Payload of newsletter.weekly: where the newsletter goes.
return {
  type = "object",
  properties = {
    list = { type = "string", format = "email" },  -- the members' mailing list
    days = { type = "integer", minimum = 1, maximum = 31 },
  },
  required = { "list" },
  additionalProperties = false,
}
