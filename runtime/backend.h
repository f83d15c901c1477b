/*
 * The backend interface: how discovery finds due tasks and reports back,
 * whatever holds the schedule. A backend is a small vtable (the way Redis's
 * scripting engines are); discovery and the executor never ask which one
 * they run on.
 */
#ifndef MT_BACKEND_H
#define MT_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "task.h"

typedef struct mt_backend_s mt_backend_t;

typedef struct mt_backend_ops_s {
  const char *name;
  /* A descriptor that becomes readable when tasks may have become due (the
   * LISTEN connection's socket), or -1. *generation changes whenever the
   * descriptor is a new one, even if its number was reused. */
  int (*wake_fd)(mt_backend_t *b, unsigned *generation);
  /* Consumes pending wake-ups. *due_now is set when a task is due now;
   * *next_due (epoch seconds) lowered to the earliest future task heard of. */
  int (*read_wakeups)(mt_backend_t *b, int *due_now, double *next_due,
                      mt_err_t *err);
  /* Discover and acknowledge in one round trip: marks the tasks in done
   * completed (their handlers ran no transaction), then claims up to max due
   * tasks for this runtime (max may be 0). */
  int (*claim)(mt_backend_t *b, const int64_t *done, size_t ndone, int max,
               mt_task_t **tasks, int *count, mt_err_t *err);
  /* Gives claimed tasks back unstarted. */
  int (*release)(mt_backend_t *b, mt_task_t *tasks, mt_err_t *err);
  /* Extends the leases of the tasks this runtime still holds (ids), and
   * rescues tasks whose lease lapsed, including ones this runtime claimed
   * but lost track of (a worker whose connection broke mid-task). */
  int (*heartbeat)(mt_backend_t *b, const int64_t *ids, size_t n,
                   mt_err_t *err);
  /* Materialises the due fires of recurring schedules as task rows, each
   * schedule's fires in one transaction (see moontask.schedules). grace is
   * how late a fire may be and still count as on time for catch_up 'skip'.
   * *next_fire (epoch seconds) is lowered to the earliest future fire known.
   * May be NULL for a backend without recurring schedules. */
  int (*fire_schedules)(mt_backend_t *b, double grace, double *next_fire,
                        mt_err_t *err);
  /* Counts tasks due or running anywhere (for --drain). */
  int (*outstanding)(mt_backend_t *b, long *count, mt_err_t *err);
  void (*free)(mt_backend_t *b);
} mt_backend_ops_t;

struct mt_backend_s {
  const mt_backend_ops_t *ops;
};

#endif
