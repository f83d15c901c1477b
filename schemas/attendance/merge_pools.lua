-- Payload of attendance.merge_pools: which event's pools to merge.
return {
  type = "object",
  properties = {
    event_id = { type = "integer", minimum = 1 },
  },
  required = { "event_id" },
  additionalProperties = false,
}
