#include "discovery/discovery.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "common/clock.h"
#include "common/log.h"
#include "lua/sources.h"

/* Tasks claimed ahead of the workers, per worker: as many as keep a worker
 * busy for PREFETCH_SECONDS at the pace its tasks have been taking
 * (mt_executor_task_seconds), from PREFETCH_MIN to PREFETCH_MAX, and
 * PREFETCH_START until a task has run. Claiming ahead amortises the
 * claim's round trip over many tasks and carries the workers through the
 * moments the loop's thread waits for a core: with no-op tasks, 32 a worker
 * drained 7-15% more a second than 16 (8 workers, 2 cores, alternating
 * runs), and once claims had become cheaper, 256 some 15% more than 32
 * (medians of five alternating rounds: 42.7k, 48.9k at 128, 49.4k at 256,
 * 51.6k at 512). The cap binds only tasks shorter than 0.2 ms, and holds
 * 2,048 of them at 8 workers. Row-inserting tasks (about 3 ms a worker
 * here) keep some 16: with 20 ms of work ahead instead of 50 they got 8,
 * and lost some 9% to claims twice as frequent. Claiming little ahead of long
 * tasks leaves them to other runtimes sharing the database, which may be idle,
 * and to a more urgent task scheduled meanwhile: 8 workers running 10 s tasks
 * hold 32 of them, where a fixed 16 a worker held 128, the last waiting some
 * 150 s. */
#define PREFETCH_MIN 4
#define PREFETCH_START 16
#define PREFETCH_MAX 256
#define PREFETCH_SECONDS 0.05

/* A claim is made once a CLAIM_MIN_SHARE-th of that room is free. The next
 * claim then follows the last one as soon as the workers have taken that
 * much: with short tasks the claim's round trip is what the workers wait
 * for, and a claim made at half the room (as before) let them empty the
 * queue while it travelled. The batch a claim takes is whatever the
 * workers used meanwhile. */
#define CLAIM_MIN_SHARE 4

/* How long a finished task may wait for its acknowledgement when no claim
 * comes along to carry it. */
#define ACK_DELAY_MS 20

/* Wake-ups come with every NOTIFY, often many a second; recurring
 * schedules are looked at on at most one of them per this interval (the
 * poll and the fire timer always look). */
#define SCHEDULE_WAKE_MS 100

/* How long aborted tasks get to roll back before the process exits. */
#define ABORT_WAIT_MS 10000

/* Changes to the task files are gathered for this long before a reload
 * starts: a burst of events (an editor's save, a deploy's copy) makes one.
 * The reload itself waits for the files to be at rest (MT_RELOAD_SETTLE_MS
 * in discovery.h), so this can be short. */
#define RELOAD_GATHER_MS 10

/* A folder being watched for changes (a linked list; inotify watches one
 * folder, not its subfolders, so each has its own). */
typedef struct watch_s {
  struct watch_s *next;
  struct mt_discovery_s *d;
  uv_fs_event_t handle; /* its data is the watch */
  char *path;
  int seen; /* still there at the last scan */
} watch_t;

struct mt_discovery_s {
  mt_discovery_opts_t opts;
  mt_executor_t *ex;
  uv_loop_t loop;
  uv_poll_t *wake_poll; /* heap: a closing handle outlives its successor */
  int wake_fd;
  unsigned wake_generation;
  uv_async_t worker_wake;
  uv_timer_t poll_timer;
  uv_timer_t due_timer;
  uv_timer_t heartbeat_timer;
  uv_timer_t grace_timer;
  uv_timer_t ack_timer;
  uv_timer_t soon_timer; /* wake-ups found after a call: handled next turn */
  uv_signal_t sigterm, sigint, sighup;
  /* Hot reload: the watches, the debounce timer, the work in the pool. */
  watch_t *watches;
  uv_timer_t reload_timer;
  uv_work_t reload_work;
  void *prepared;
  int reloading, reload_again;
  double next_due;     /* epoch of the earliest future task heard of */
  double schedules_at; /* epoch when schedules were last looked at */
  int stopping;
  int rc; /* what the shutdown could not settle (fail) */
  mt_err_t err;
};

/* Logs a backend call's failure. While the runtime runs, the loop tries
 * again, and a failure it got past is no failure of the run (a database
 * restart, a dropped connection). Once it is stopping, a failure is work
 * the shutdown could not settle (tasks given back to their leases rather
 * than released or acknowledged), and the exit status says so. */
static void fail(mt_discovery_t *d, int rc) {
  mt_log(MT_LOG_WARN, "%s", d->err.msg);
  if (d->stopping && d->rc == 0)
    d->rc = rc;
}

static void finish(mt_discovery_t *d) { uv_stop(&d->loop); }

/* Arms the timer for the earliest future task we know of. */
static void arm_due_timer(mt_discovery_t *d);

static void watch_wake_fd(mt_discovery_t *d);

static void after_backend_call(mt_discovery_t *d, int rc);

static void on_ack_timer(uv_timer_t *handle);

static int prefetch_per_worker(double task_seconds) {
  if (task_seconds <= 0)
    return PREFETCH_START;
  double n = ceil(PREFETCH_SECONDS / task_seconds);
  return n < PREFETCH_MIN   ? PREFETCH_MIN
         : n > PREFETCH_MAX ? PREFETCH_MAX
                            : (int)n;
}

/* Tasks claimed ahead at one pace wait behind the workers at another: after
 * a run of short tasks, up to PREFETCH_MAX a worker, and should the next
 * turn out long, they would wait (leases kept alive) while other runtimes
 * sharing the database may be idle. Once more than SHED_FACTOR times the
 * room at the present pace wait, and they would keep the workers busy for
 * more than SHED_SECONDS, the last to run beyond that room are released,
 * unstarted, for any runtime to claim. The second condition spares a
 * stream of short tasks with the odd slow one: a single 10 ms task among
 * no-ops moves the pace (a moving average) enough to shrink the room
 * below half the queue, not enough to make the queue a second's work. */
#define SHED_FACTOR 2
#define SHED_SECONDS 1.0

/* Releases tasks taken from the executor unstarted, their attempt not
 * counted. Should that fail, they stay held, given back with their leases
 * kept, and a later tick tries again. */
static void release_unstarted(mt_discovery_t *d, mt_task_t *tasks) {
  mt_backend_t *b = d->opts.backend;
  if (tasks == NULL)
    return;
  int rc = b->ops->release(b, tasks, &d->err);
  if (rc != 0) {
    fail(d, MT_EDB);
    mt_executor_give_back(d->ex, tasks);
    tasks = NULL;
  }
  after_backend_call(d, rc);
  while (tasks != NULL) {
    mt_task_t *next = tasks->next;
    mt_task_free(tasks);
    tasks = next;
  }
}

/* Releases the queued tasks after the first `keep` (SHED_FACTOR); returns
 * how many left the queue. */
static int shed(mt_discovery_t *d, int keep, double pace) {
  int n;
  mt_task_t *tasks = mt_executor_take_queued_after(d->ex, keep, &n);
  if (n > 0)
    mt_log(MT_LOG_INFO,
           "released %d tasks claimed ahead: at %.3g s a task, %d are "
           "enough to keep the workers busy",
           n, pace, keep);
  release_unstarted(d, tasks);
  return n;
}

/* Acknowledges what finished and claims up to `room` tasks, in one round
 * trip. Returns the number claimed. */
static int claim(mt_discovery_t *d, int room) {
  mt_backend_t *b = d->opts.backend;
  mt_done_t *done;
  size_t ndone = mt_executor_take_done(d->ex, &done);
  mt_task_t *tasks = NULL;
  int claimed = 0;
  double retry_at = INFINITY;
  int rc =
      b->ops->claim(b, done, ndone, room, &tasks, &claimed, &retry_at, &d->err);
  free(done);
  if (rc != 0)
    fail(d, rc); /* unacknowledged tasks stay leased and will run again */
  mt_executor_submit(d->ex, tasks);
  uv_timer_stop(&d->ack_timer);
  /* A queue's rate allows its next start then: claim again at that time,
   * as for a task due then. */
  if (retry_at < d->next_due) {
    d->next_due = retry_at;
    arm_due_timer(d);
  }
  after_backend_call(d, rc);
  return claimed;
}

/* The heart of discovery, run after any event: claim when the workers'
 * queue runs low, acknowledging finished tasks on the way. Finished tasks
 * are not acknowledged on their own at once: while work flows they ride
 * along with the next claim, and otherwise a short timer sends them. */
static void tick(mt_discovery_t *d) {
  mt_backend_t *b = d->opts.backend;
  /* Tasks that no worker could run (none had a connection) go back
   * unstarted. */
  release_unstarted(d, mt_executor_take_given_back(d->ex));
  /* Counts first: a worker adds its task to the done list before it stops
   * counting as running, so running == 0 here means the claim below
   * acknowledges every finished task. */
  int queued, running, online;
  mt_executor_load(d->ex, &queued, &running, &online);
  if (d->stopping) {
    if (running == 0 && queued == 0) {
      claim(d, 0);
      finish(d);
    }
    return;
  }
  /* Only workers with a connection take tasks: claim for them alone. */
  double pace = mt_executor_task_seconds(d->ex);
  int capacity = online * prefetch_per_worker(pace);
  if (capacity > 0 && queued > SHED_FACTOR * capacity &&
      queued * pace / online > SHED_SECONDS)
    queued -= shed(d, capacity, pace);
  int low = capacity - capacity / CLAIM_MIN_SHARE;
  int claimed = -1;
  mt_executor_wake_below(d->ex, low);
  if (capacity > 0 && queued < low)
    claimed =
        claim(d, capacity - queued - running > 0 ? capacity - queued - running
                                                 : capacity / CLAIM_MIN_SHARE);
  else if (!uv_is_active((uv_handle_t *)&d->ack_timer))
    uv_timer_start(&d->ack_timer, on_ack_timer, ACK_DELAY_MS, 0);
  if (d->opts.drain && claimed == 0 && queued == 0 && running == 0) {
    int outstanding = 0;
    int rc = b->ops->outstanding(b, &outstanding, &d->err);
    if (rc != 0)
      fail(d, MT_EDB);
    after_backend_call(d, rc);
    if (rc == 0 && !outstanding)
      finish(d);
  }
}

static void on_ack_timer(uv_timer_t *handle) { claim(handle->data, 0); }

/* Turns the due fires of recurring schedules into tasks (before the claim
 * that follows, so that they run at once) and arms the due timer for the
 * next fire: a schedule firing more often than poll_interval fires on time
 * only through that timer. */
static void fire_schedules(mt_discovery_t *d) {
  mt_backend_t *b = d->opts.backend;
  if (b->ops->fire_schedules == NULL || d->stopping)
    return;
  /* A fire found a little late is still on time for catch_up 'skip': the
   * loop may have been busy for a poll or so. */
  double grace = d->opts.poll_interval > 1 ? d->opts.poll_interval : 1;
  double next = INFINITY;
  d->schedules_at = mt_epoch_now();
  int rc = b->ops->fire_schedules(b, grace, &next, &d->err);
  if (rc != 0)
    fail(d, MT_EDB);
  after_backend_call(d, rc);
  if (isinf(next))
    return;
  /* The database's clock decides when a fire is due; should it lag ours,
   * do not spin on a timer that keeps expiring at once. */
  if (next < d->schedules_at + 0.01)
    next = d->schedules_at + 0.01;
  if (next < d->next_due) {
    d->next_due = next;
    arm_due_timer(d);
  }
}

/* Reads the pending wake-ups: arms the due timer for a task heard of for
 * later, and returns whether one is due now. */
static int take_wakeups(mt_discovery_t *d, int due_now) {
  mt_backend_t *b = d->opts.backend;
  double next_due = d->next_due;
  if (b->ops->read_wakeups(b, &due_now, &next_due, &d->err) != 0)
    fail(d, MT_EDB);
  watch_wake_fd(d);
  if (next_due < d->next_due) {
    d->next_due = next_due;
    arm_due_timer(d);
  }
  return due_now;
}

/* A task is due now: claim for it, then look at the recurring schedules
 * (at most every SCHEDULE_WAKE_MS). In that order, unlike the timers: the
 * look is a round trip that the woken task would otherwise wait for, and
 * fires it finds wake this loop again (their NOTIFY, read after the call)
 * to be claimed on its next turn. */
static void wake(mt_discovery_t *d) {
  tick(d);
  if (mt_epoch_now() - d->schedules_at >= SCHEDULE_WAKE_MS / 1000.0)
    fire_schedules(d);
}

static void on_wake_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  mt_discovery_t *d = handle->data;
  if (take_wakeups(d, status < 0))
    wake(d);
}

static void on_soon_timer(uv_timer_t *handle) { wake(handle->data); }

/* Runs after every call on the backend's connection, before the loop
 * polls again. First, the call may have lost its connection (libpq closes
 * the socket) or made a new one: the descriptor watched must follow at
 * once, for libuv aborts the process when it hands epoll a descriptor that
 * was closed under a watch it had yet to register (seen when the
 * connection was killed during the runtime's first heartbeat).
 * Then, a call (a claim, a heartbeat, the schedules) makes libpq read
 * whatever NOTIFY arrived meanwhile into a queue of its own: the socket is
 * drained and never becomes readable for it, and the wake-up would wait
 * for the next poll (a second, by default). So after each call the queue
 * is read as if the socket had been, and a wake-up found there is handled
 * on the loop's next turn rather than from inside the call that found it.
 * Not after a failed call (rc): its connection is the next call's to make
 * again, once, not this look's too. */
static void after_backend_call(mt_discovery_t *d, int rc) {
  watch_wake_fd(d);
  if (rc == 0 && !d->stopping && take_wakeups(d, 0))
    uv_timer_start(&d->soon_timer, on_soon_timer, 0, 0);
}

static void free_handle(uv_handle_t *handle) { free(handle); }

/* (Re)starts watching the backend's descriptor after a reconnect. The
 * generation, not the number, tells: a new socket often reuses the old
 * one's number, and epoll forgot the old socket when it was closed. */
static void watch_wake_fd(mt_discovery_t *d) {
  mt_backend_t *b = d->opts.backend;
  unsigned generation;
  int fd = b->ops->wake_fd(b, &generation);
  if (fd == d->wake_fd && generation == d->wake_generation)
    return;
  if (d->wake_poll != NULL)
    uv_close((uv_handle_t *)d->wake_poll, free_handle);
  d->wake_poll = NULL;
  d->wake_fd = -1;
  if (fd < 0 || d->stopping)
    return;
  uv_poll_t *poll = malloc(sizeof *poll);
  if (poll == NULL || uv_poll_init_socket(&d->loop, poll, fd) != 0) {
    free(poll); /* no wake-ups: the poll timer still finds due tasks */
    return;
  }
  poll->data = d;
  uv_poll_start(poll, UV_READABLE, on_wake_readable);
  d->wake_poll = poll;
  d->wake_fd = fd;
  d->wake_generation = generation;
}

static void on_worker_wake(uv_async_t *handle) { tick(handle->data); }

static void on_poll_timer(uv_timer_t *handle) {
  fire_schedules(handle->data);
  tick(handle->data);
}

static void on_due_timer(uv_timer_t *handle) {
  mt_discovery_t *d = handle->data;
  /* The timer runs on the loop's monotonic clock, next_due on the wall
   * clock: should the two disagree, a claim made early would find nothing
   * and leave the task to the next poll. Wait out the rest instead. */
  if (mt_epoch_now() < d->next_due) {
    arm_due_timer(d);
    return;
  }
  d->next_due = INFINITY;
  fire_schedules(d);
  tick(d);
}

static void arm_due_timer(mt_discovery_t *d) {
  if (isinf(d->next_due))
    return;
  double wait = d->next_due - mt_epoch_now();
  uint64_t ms = wait > 0 ? (uint64_t)(wait * 1000) + 1 : 0;
  /* libuv counts a timeout from the loop's cached time, taken before this
   * iteration's callbacks ran (a slow read of the wake-ups, say): bring it
   * up to date, or the timer fires that much early. */
  uv_update_time(&d->loop);
  uv_timer_start(&d->due_timer, on_due_timer, ms, 0);
}

static void on_heartbeat(uv_timer_t *handle) {
  mt_discovery_t *d = handle->data;
  mt_backend_t *b = d->opts.backend;
  int64_t *held;
  size_t n = mt_executor_held(d->ex, &held);
  if (n == (size_t)-1)
    return; /* no memory now; the next beat comes well within the lease */
  int rc = b->ops->heartbeat(b, held, n, &d->err);
  if (rc != 0)
    fail(d, MT_EDB);
  free(held);
  after_backend_call(d, rc);
}

static void on_hard_stop(uv_timer_t *handle) {
  (void)handle;
  mt_log(MT_LOG_WARN, "tasks did not stop after being aborted: "
                      "exiting; their leases will bring them back");
  _exit(1);
}

static void on_grace_timeout(uv_timer_t *handle) {
  mt_discovery_t *d = handle->data;
  mt_log(MT_LOG_WARN,
         "shutdown grace of %gs is over: aborting the "
         "tasks still running",
         d->opts.shutdown_grace);
  mt_executor_abort(d->ex);
  /* A handler stuck inside one C call cannot see the abort; do not wait
   * for it forever. */
  uv_timer_start(&d->grace_timer, on_hard_stop, ABORT_WAIT_MS, 0);
}

static void begin_shutdown(mt_discovery_t *d) {
  mt_backend_t *b = d->opts.backend;
  d->stopping = 1;
  uv_timer_stop(&d->poll_timer);
  uv_timer_stop(&d->due_timer);
  mt_task_t *queued = mt_executor_take_queued(d->ex);
  if (queued != NULL) {
    int rc = b->ops->release(b, queued, &d->err);
    if (rc != 0)
      fail(d, MT_EDB);
    after_backend_call(d, rc);
  }
  while (queued != NULL) {
    mt_task_t *next = queued->next;
    mt_task_free(queued);
    queued = next;
  }
  uv_timer_start(&d->grace_timer, on_grace_timeout,
                 (uint64_t)(d->opts.shutdown_grace * 1000), 0);
  tick(d);
}

/* The second signal: the operator insists. Handled by a plain signal
 * handler, not the loop, because the loop may be waiting on the database.
 * Leases bring the running tasks back later. */
static void on_second_signal(int signum) {
  (void)signum;
  static const char msg[] = "moontask: second signal: exiting now\n";
  ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)ignored;
  _exit(1);
}

static void on_signal(uv_signal_t *handle, int signum) {
  mt_discovery_t *d = handle->data;
  uv_signal_stop(&d->sigterm);
  uv_signal_stop(&d->sigint);
  struct sigaction sa = {.sa_handler = on_second_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  mt_log(MT_LOG_INFO,
         "%s: finishing the tasks in flight (up to %gs); "
         "send it again to exit at once",
         signum == SIGTERM ? "SIGTERM" : "SIGINT", d->opts.shutdown_grace);
  begin_shutdown(d);
}

/* ---- hot reload --------------------------------------------------------- */

static void request_reload(mt_discovery_t *d);

static void reload_work(uv_work_t *req) {
  mt_discovery_t *d = req->data;
  d->prepared = d->opts.reload_prepare(d->opts.reload_arg);
}

static void reload_done(uv_work_t *req, int status) {
  mt_discovery_t *d = req->data;
  (void)status;
  d->reloading = 0;
  /* After the run (the executor may be gone), what was made is dropped. */
  d->opts.reload_apply(d->opts.reload_arg, d->prepared, !d->stopping);
  d->prepared = NULL;
  /* New names may be claimable at once. */
  if (!d->stopping)
    tick(d);
  if (d->reload_again && !d->stopping) {
    d->reload_again = 0;
    request_reload(d);
  }
}

static void request_reload(mt_discovery_t *d) {
  if (d->opts.reload_prepare == NULL || d->stopping)
    return;
  if (d->reloading) {
    d->reload_again = 1;
    return;
  }
  d->reloading = 1;
  d->reload_work.data = d;
  if (uv_queue_work(&d->loop, &d->reload_work, reload_work, reload_done) != 0)
    d->reloading = 0;
}

static void watch_folders(mt_discovery_t *d);

static void on_reload_timer(uv_timer_t *handle) {
  mt_discovery_t *d = handle->data;
  watch_folders(d); /* a folder made or removed meanwhile */
  request_reload(d);
}

static void on_folder_changed(uv_fs_event_t *handle, const char *file,
                              int events, int status) {
  (void)file;
  (void)events;
  (void)status;
  mt_discovery_t *d = ((watch_t *)handle->data)->d;
  /* Each change restarts the wait: one reload for a burst of them. */
  uv_timer_start(&d->reload_timer, on_reload_timer, RELOAD_GATHER_MS, 0);
}

static void on_sighup(uv_signal_t *handle, int signum) {
  (void)signum;
  mt_discovery_t *d = handle->data;
  mt_log(MT_LOG_INFO, "SIGHUP: reloading the tasks");
  request_reload(d);
}

static void free_watch(uv_handle_t *handle) {
  watch_t *w = handle->data;
  free(w->path);
  free(w);
}

/* Watches one folder, unless it is watched already (mt_sources_walk's
 * visit_dir: every folder the task loader and the snapshot read). */
static int watch_folder(void *arg, const char *dir, mt_err_t *err) {
  mt_discovery_t *d = arg;
  (void)err;
  watch_t *w = d->watches;
  while (w != NULL && strcmp(w->path, dir) != 0)
    w = w->next;
  if (w == NULL) {
    if ((w = calloc(1, sizeof *w)) == NULL || (w->path = strdup(dir)) == NULL ||
        uv_fs_event_init(&d->loop, &w->handle) != 0) {
      if (w != NULL)
        free(w->path);
      free(w);
      return 0; /* unwatched: SIGHUP and `moontask reload` still work */
    }
    w->handle.data = w;
    w->d = d;
    if (uv_fs_event_start(&w->handle, on_folder_changed, dir, 0) != 0) {
      uv_close((uv_handle_t *)&w->handle, free_watch);
      return 0;
    }
    w->next = d->watches;
    d->watches = w;
  }
  w->seen = 1;
  return 0;
}

/* (Re)scans the watched folders: new subfolders get a watch, and the
 * watches of folders that are gone are closed. */
static void watch_folders(mt_discovery_t *d) {
  if (d->opts.watch == NULL || d->stopping)
    return;
  for (watch_t *w = d->watches; w != NULL; w = w->next)
    w->seen = 0;
  /* The walk the snapshot makes: a symlink loop stops it (the reload
   * refuses such a tree, and says so), and what was seen stays watched. */
  const mt_sources_walk_t walk = {
      .what = "folder", .visit_dir = watch_folder, .arg = d};
  mt_err_t ignored;
  for (const char *const *dir = d->opts.watch; *dir != NULL; dir++) {
    struct stat st;
    if (stat(*dir, &st) == 0 && S_ISDIR(st.st_mode))
      mt_sources_walk(*dir, &walk, &ignored);
  }
  for (watch_t **p = &d->watches; *p != NULL;) {
    watch_t *w = *p;
    if (w->seen) {
      p = &w->next;
      continue;
    }
    *p = w->next;
    uv_close((uv_handle_t *)&w->handle, free_watch);
  }
}

int mt_discovery_new(mt_discovery_t **out, const mt_discovery_opts_t *opts,
                     mt_err_t *err) {
  mt_discovery_t *d = calloc(1, sizeof *d);
  if (d == NULL)
    return mt_err_set(err, MT_ENOMEM, "out of memory");
  d->opts = *opts;
  d->wake_fd = -1;
  d->next_due = INFINITY;
  if (uv_loop_init(&d->loop) != 0) {
    free(d);
    return mt_err_set(err, MT_ESYS, "cannot create the event loop");
  }
  uv_async_init(&d->loop, &d->worker_wake, on_worker_wake);
  d->worker_wake.data = d;
  uv_timer_t *timers[] = {&d->poll_timer,  &d->due_timer, &d->heartbeat_timer,
                          &d->grace_timer, &d->ack_timer, &d->soon_timer,
                          &d->reload_timer};
  for (size_t i = 0; i < sizeof timers / sizeof *timers; i++) {
    uv_timer_init(&d->loop, timers[i]);
    timers[i]->data = d;
  }
  uv_signal_init(&d->loop, &d->sigterm);
  uv_signal_init(&d->loop, &d->sigint);
  uv_signal_init(&d->loop, &d->sighup);
  d->sigterm.data = d->sigint.data = d->sighup.data = d;
  *out = d;
  return 0;
}

uv_loop_t *mt_discovery_loop(mt_discovery_t *d) { return &d->loop; }

void mt_discovery_wake(void *discovery) {
  mt_discovery_t *d = discovery;
  uv_async_send(&d->worker_wake);
}

int mt_discovery_run(mt_discovery_t *d, mt_executor_t *ex, mt_err_t *err) {
  d->ex = ex;
  uint64_t poll_ms = (uint64_t)(d->opts.poll_interval * 1000);
  double beat = d->opts.lease_timeout / 3 < 5 ? d->opts.lease_timeout / 3 : 5;
  uv_signal_start(&d->sigterm, on_signal, SIGTERM);
  uv_signal_start(&d->sigint, on_signal, SIGINT);
  if (d->opts.reload_prepare != NULL) {
    uv_signal_start(&d->sighup, on_sighup, SIGHUP);
    watch_folders(d);
  }
  uv_timer_start(&d->poll_timer, on_poll_timer, poll_ms ? poll_ms : 1,
                 poll_ms ? poll_ms : 1);
  uv_timer_start(&d->heartbeat_timer, on_heartbeat, (uint64_t)(beat * 1000),
                 (uint64_t)(beat * 1000));
  watch_wake_fd(d);
  /* Rescue what a dead runtime left behind before the first claim. */
  on_heartbeat(&d->heartbeat_timer);
  fire_schedules(d);
  tick(d);
  uv_run(&d->loop, UV_RUN_DEFAULT);
  d->stopping = 1; /* a reload still in the pool finds nothing to apply to */

  if (d->rc != 0)
    mt_err_set(err, d->rc, "%s", d->err.msg);
  return d->rc;
}

static void close_cb(uv_handle_t *handle, void *arg) {
  (void)arg;
  if (!uv_is_closing(handle))
    uv_close(handle, handle->type == UV_POLL       ? free_handle
                     : handle->type == UV_FS_EVENT ? free_watch
                                                   : NULL);
}

void mt_discovery_free(mt_discovery_t *d) {
  if (d == NULL)
    return;
  uv_walk(&d->loop, close_cb, NULL);
  uv_run(&d->loop, UV_RUN_DEFAULT);
  uv_loop_close(&d->loop);
  free(d);
}
