-- A small memory limit, for payloads too big to decode within it.
return {
  memory_limit = 4 * 1024 * 1024,
  max_attempts = 1,
  handler = function(tx, payload, ctx) end,
}
