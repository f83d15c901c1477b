-- Does nothing: measures the runtime's own cost per task.
return { handler = function(tx, payload, ctx) end }
