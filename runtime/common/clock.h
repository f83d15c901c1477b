/*
 * The monotonic clock every deadline in moontask is measured on: task
 * timeouts, statement cancellation, the Lua guard's time limits.
 */
#ifndef MT_CLOCK_H
#define MT_CLOCK_H

/* Seconds on a monotonic clock. */
double mt_now(void);

#endif
