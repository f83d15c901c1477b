-- attendance.merge_pools { event_id }
--
-- Merges an event's attendance pools into one, at a fixed time before the
-- event (the application schedules it for starts_at - 1 day). Until then
-- spots are reserved per group; after it, any free spot goes to whoever
-- comes first, whichever group they belong to.
--
-- The application schedules it under the event's key, in the transaction
-- that creates the event, and when the event moves it moves the task in
-- the transaction that moves the event: one reschedule, where the seed
-- cancelled the task and scheduled another (a rollback undoes both).
--
--   SELECT moontask.schedule('attendance.merge_pools',
--            jsonb_build_object('event_id', e.id),
--            e.starts_at - interval '1 day', 'merge-pools:' || e.id);
--   -- the event moved:
--   SELECT moontask.reschedule(
--            (SELECT id FROM moontask.find('merge-pools:' || e.id)),
--            e.starts_at - interval '1 day');
--
-- Idempotent: events.pools_merged_at records that the merge happened, so a
-- second task for the same event (a duplicate schedule, a manual retry)
-- changes nothing.
return {
  schema = "attendance.merge_pools",
  max_attempts = 5,
  timeout = 30,
  handler = function(tx, payload, ctx)
    local event_id = payload.event_id -- an integer: the schema says so

    -- FOR UPDATE: two merges of the same event (say, two runtimes picking
    -- up duplicate tasks) queue up here, and the second sees the first's
    -- pools_merged_at instead of merging the pools twice.
    local event = tx:query(
      "SELECT id, title, pools_merged_at FROM app.events WHERE id = $1 FOR UPDATE",
      event_id)[1]
    if event == nil then
      -- An error rather than a quiet return: an event that vanished while
      -- its merge was pending is worth a human look, and the retries give a
      -- transaction that has not committed yet the time to do so.
      error(string.format("event %d does not exist", event_id))
    end
    if event.pools_merged_at ~= nil then
      ctx.log("info", "event %d: pools already merged at %s", event_id,
              event.pools_merged_at)
      return
    end

    -- Pools still holding their own spots, locked so that no one changes
    -- their capacity while it is being added up.
    local pools = tx:query(
      "SELECT id, pool, capacity FROM app.attendance_pools\n" ..
      " WHERE event_id = $1 AND NOT merged ORDER BY id FOR UPDATE",
      event_id)

    if #pools > 1 then
      local capacity, ids = 0, {}
      for _, p in ipairs(pools) do
        capacity = capacity + p.capacity
        ids[#ids + 1] = p.id
      end
      -- Exactly the pools counted above, as a bound bigint[] parameter: a
      -- pool added meanwhile (row locks do not cover rows yet to exist)
      -- keeps its own spots instead of being merged without its capacity.
      local pool_ids = "{" .. table.concat(ids, ",") .. "}"

      -- The merged pool gets every spot the groups had, taken and free
      -- alike: attendees keep their places, and what is left is shared.
      local merged = tx:query(
        "INSERT INTO app.attendance_pools (event_id, pool, capacity)\n" ..
        "VALUES ($1, 'merged', $2) RETURNING id",
        event_id, capacity)[1]
      local moved = tx:exec(
        "UPDATE app.attendees SET pool_id = $1 WHERE pool_id = ANY($2::bigint[])",
        merged.id, pool_ids)
      tx:exec(
        "UPDATE app.attendance_pools SET merged = true WHERE id = ANY($1::bigint[])",
        pool_ids)
      ctx.log("info", "event %d: merged %d pools (%d spots, %d attendees)",
              event_id, #pools, capacity, moved)
    else
      -- Zero or one pool: there is nothing to merge, but the event is
      -- still marked so that the outcome reads the same as a real merge.
      ctx.log("info", "event %d: %d pool(s), nothing to merge", event_id, #pools)
    end

    tx:exec("UPDATE app.events SET pools_merged_at = now() WHERE id = $1", event_id)
  end,
}
