-- Accepts any object; its payload is what the test compares.
return { handler = function(tx, payload, ctx) end }
