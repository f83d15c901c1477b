-- Payload of payments.verify: the payment whose deadline has come.
return {
  type = "object",
  properties = {
    payment_id = { type = "integer", minimum = 1 },
  },
  required = { "payment_id" },
  additionalProperties = false,
}
