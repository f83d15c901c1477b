-- payments.verify { payment_id }
--
-- Runs at a payment's deadline (the application schedules it with
-- run_at = deadline when it asks the attendee to pay). A payment still
-- pending by then expires: the attendee's spot is released for someone
-- else, and they are told so by mail. A paid payment needs nothing.
--
-- The expiry, the released spot and the mail task commit together with this
-- task's completion, or not at all: a crash midway leaves the payment
-- pending and the task due, never a released spot without its mail.
return {
  schema = "payments.verify",
  max_attempts = 5,
  timeout = 30,
  handler = function(tx, payload, ctx)
    local payment_id = payload.payment_id -- an integer: the schema says so

    -- FOR UPDATE OF p: the payment provider's callback marks payments paid
    -- concurrently; locking the row means it either lands before this read
    -- (and we see 'paid') or waits until we have decided.
    local p = tx:query(
      "SELECT p.status, p.amount, a.id AS attendee_id, a.name, a.email,\n" ..
      "       e.title, p.deadline > now() AS early,\n" ..
      "       extract(epoch FROM p.deadline)::float8 AS deadline_epoch\n" ..
      "  FROM app.payments p\n" ..
      "  JOIN app.attendees a ON a.id = p.attendee_id\n" ..
      "  JOIN app.events e ON e.id = p.event_id\n" ..
      " WHERE p.id = $1 FOR UPDATE OF p",
      payment_id)[1]
    if p == nil then
      error(string.format("payment %d does not exist", payment_id))
    end

    if p.status ~= "pending" then
      -- Paid in time, or already expired by an earlier run: nothing to do.
      ctx.log("info", "payment %d is %s", payment_id, p.status)
      return
    end

    if p.early then
      -- The deadline was extended after this task was scheduled. Check
      -- again at the new deadline rather than expiring a payment that may
      -- still arrive in time.
      local id = tx:schedule("payments.verify", { payment_id = payment_id },
                             { run_at = p.deadline_epoch })
      ctx.log("info", "payment %d: deadline moved, checking again as task %d",
              payment_id, id)
      return
    end

    tx:exec("UPDATE app.payments SET status = 'expired' WHERE id = $1", payment_id)
    tx:exec("UPDATE app.attendees SET released_at = now() WHERE id = $1", p.attendee_id)

    -- A task of its own rather than a row written here: delivery is the
    -- mail task's business, with its own retries, and it may be swapped for
    -- a real mail service without touching this handler.
    tx:schedule("email.send_reminder", {
      recipient = p.email,
      subject = string.format("Your spot at %s was released", p.title),
      body = string.format(
        "Hi %s,\n\nWe did not receive your payment of %d.%02d kr for %s " ..
        "before the deadline, so your spot has been given to someone on " ..
        "the waiting list. You are welcome to sign up again if spots " ..
        "open up.\n",
        p.name, p.amount // 100, p.amount % 100, p.title),
    })
    ctx.log("info", "payment %d expired; attendee %d released", payment_id,
            p.attendee_id)
  end,
}
