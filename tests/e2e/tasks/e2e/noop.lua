return {
  handler = function(tx, payload, ctx) end,
}
