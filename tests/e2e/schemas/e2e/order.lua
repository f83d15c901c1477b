-- An order: nested objects, arrays of $ref-ed items, formats, patterns.
return {
  type = "object",
  properties = {
    email = { type = "string", format = "email" },
    lines = { type = "array", minItems = 1, items = { ["$ref"] = "#/$defs/line" } },
    note = { oneOf = { { type = "null" }, { type = "string", maxLength = 20 } } },
  },
  required = { "email", "lines" },
  ["$defs"] = {
    line = {
      type = "object",
      properties = {
        sku = { type = "string", pattern = "^[A-Z]{3}-[0-9]{4}$" },
        qty = { type = "integer", minimum = 1 },
      },
      required = { "sku", "qty" },
    },
  },
}
