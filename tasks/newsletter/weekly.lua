-- newsletter.weekly { list, days? }
--
-- Every Monday at 09:00 Oslo time, gathers the events of the coming week
-- into one mail to the members' mailing list (written to app.outbox, which
-- stands in for a mail service). The week is counted from the fire time
-- (ctx.run_at), not from when the task happens to run, so a fire caught up
-- after downtime still describes the week it was meant for.
return {
  schema = "newsletter.weekly",
  max_attempts = 5,
  timeout = 30,
  schedule = {
    cron = "0 9 * * MON",
    tz = "Europe/Oslo",
    payload = { list = "members@example.org" },
  },
  handler = function(tx, payload, ctx)
    local days = payload.days or 7
    local events = tx:query(
      "SELECT title, to_char(starts_at AT TIME ZONE 'Europe/Oslo',\n" ..
      "                      'Dy DD Mon HH24:MI') AS starts\n" ..
      "  FROM app.events\n" ..
      " WHERE starts_at >= $1::timestamptz\n" ..
      "   AND starts_at < $1::timestamptz + $2 * interval '1 day'\n" ..
      " ORDER BY starts_at, id",
      ctx.run_at, days)

    local lines = {}
    for _, e in ipairs(events) do
      lines[#lines + 1] = string.format("- %s: %s", e.starts, e.title)
    end
    local body = #lines > 0
      and "Coming up this week:\n\n" .. table.concat(lines, "\n") .. "\n"
      or "No events this week. See you soon!\n"

    -- One mail per fire: task_id is unique in the outbox, so a task run
    -- again never sends the newsletter twice.
    tx:exec(
      "INSERT INTO app.outbox (kind, recipient, subject, body, task_id)\n" ..
      "VALUES ('newsletter', $1, $2, $3, $4) ON CONFLICT (task_id) DO NOTHING",
      payload.list, string.format("This week: %d event%s", #events,
                                  #events == 1 and "" or "s"),
      body, ctx.id)
  end,
}
