/*
 * The two clocks: the monotonic one every deadline in moontask is measured
 * on (task timeouts, statement cancellation, the Lua guard's time limits),
 * and the wall clock, for instants that other systems share (a task's
 * run_at, credentials' expiry, a message's visibility).
 */
#ifndef MT_CLOCK_H
#define MT_CLOCK_H

/* Seconds on a monotonic clock. */
double mt_now(void);

/* Seconds since the epoch, on the wall clock (it may jump). */
double mt_epoch_now(void);

#endif
