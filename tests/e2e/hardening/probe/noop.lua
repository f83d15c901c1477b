return {
  handler = function(tx, payload, ctx)
    tx:exec("INSERT INTO probe_log (task, note) VALUES ('noop', $1)", tostring(payload.n))
  end,
}
