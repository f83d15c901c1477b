/*
 * The embedded PostgreSQL cluster: a private server that moontask initialises
 * and runs on the machine's own PostgreSQL binaries when no database URL is
 * configured (`moontask db start|stop|status|url`, and `moontask run`).
 *
 * The server listens on a Unix socket only. For an ordinary user the cluster
 * lives in <workdir>/.moontask/. PostgreSQL refuses to run as root and an
 * unprivileged user cannot enter a checkout under /root, so under root the
 * server runs as "postgres" (or "nobody") in /var/tmp/moontask-<hash of
 * workdir>, and <workdir>/.moontask/cluster names that folder for humans.
 *
 * Ownership: the caller owns the mt_embedded_t (plain paths, nothing to free)
 * and the error buffer. The cluster on disk belongs to the workdir; a started
 * server outlives the process that started it until mt_embedded_stop().
 * mt_embedded_start() and mt_embedded_stop() serialise on a lock file in the
 * cluster folder, so concurrent callers in several processes are safe.
 */
#ifndef MT_POSTGRES_EMBEDDED_H
#define MT_POSTGRES_EMBEDDED_H

#include "common/error.h"

typedef struct mt_embedded_s {
  char workdir[4096]; /* realpath of the directory the cluster belongs to */
  char root[4096];    /* private folder holding data/, the socket and the log */
  char data_dir[4096];
  char socket_dir[4096];
  char log_file[4096];
  char url[8192]; /* libpq URL: postgresql:///moontask?host=<socket dir,
                     percent-encoded>&user=moontask */
} mt_embedded_t;

/* Computes paths for the cluster belonging to workdir (NULL = current dir). No
 * side effects. */
int mt_embedded_locate(mt_embedded_t *db, const char *workdir, mt_err_t *err);
/* Initialises the cluster if missing (initdb, auth trust, superuser "moontask",
 * UTF8), starts it if not running (socket only: listen_addresses='',
 * unix_socket_directories=socket_dir), waits until it accepts connections, and
 * creates database "moontask" if missing. Idempotent; two processes calling it
 * at once must both succeed (use flock on a lock file in root). Prints nothing
 * on success except that the first initdb may print one line "moontask:
 * initialised embedded database in <root>" to stderr. */
int mt_embedded_start(mt_embedded_t *db, mt_err_t *err);
/* Stops the server (fast shutdown) if running; ok if not running. */
int mt_embedded_stop(mt_embedded_t *db, mt_err_t *err);
/* *running = 1 and *pid = postmaster pid if the server is up and answers
 * (PQping), else 0. */
int mt_embedded_status(mt_embedded_t *db, int *running, long *pid,
                       mt_err_t *err);

#endif
