// Graphile Worker's side of scripts/bench: the same workloads as
// moontask's bench tasks (tests/bench/tasks/bench/*.lua), run by
// graphile-worker with its default settings but the concurrency.
//
//   node bench.js drain CONCURRENCY TASK   runs until no job of TASK is
//       due, then prints
//       "first F last L done N": its first job's start and its last job's
//       completion (epoch seconds), and how many it completed; several
//       processes may drain one queue together
//   node bench.js serve CONCURRENCY   runs until SIGTERM (latency)
//
// DATABASE_URL names the database; graphile-worker is found through
// NODE_PATH (scripts/bench installs it into a cache folder). GW_BATCH=N
// turns its batching on: a local queue of N jobs, completions batched.
"use strict";
const { run } = require("graphile-worker");

const [mode, ...args] = process.argv.slice(2);

// The handlers: moontask's bench tasks, one for one. Graphile Worker runs a
// job outside any transaction: a handler's statement commits on its own,
// and the job's completion is a statement of its own afterwards.
const taskList = {
  noop: async () => {},
  insert: async (payload, helpers) => {
    await helpers.query("INSERT INTO bench_rows (task_id) VALUES ($1)", [
      helpers.job.id,
    ]);
  },
  latency: async (payload, helpers) => {
    await helpers.query(
      "INSERT INTO bench_latency (task_id, started) VALUES ($1, clock_timestamp())",
      [helpers.job.id],
    );
  },
};

const now = () => (performance.timeOrigin + performance.now()) / 1000;

async function main() {
  const concurrency = Number(args[0]);
  const events = new (require("events").EventEmitter)();
  const runner = await run({
    connectionString: process.env.DATABASE_URL,
    concurrency,
    // One connection per job in flight, and a few for the pool's own work.
    maxPoolSize: concurrency + 2,
    noHandleSignals: true,
    taskList,
    events,
    logger: new (require("graphile-worker").Logger)(() => () => {}),
    preset: process.env.GW_BATCH
      ? {
          worker: {
            localQueue: { size: Number(process.env.GW_BATCH) },
            completeJobBatchDelay: 0,
          },
        }
      : undefined,
  });
  if (mode === "serve") {
    console.log("ready");
    process.on("SIGTERM", async () => {
      await runner.stop();
      process.exit(0); // the pool's idle connections would keep it alive
    });
    return;
  }
  let first = null;
  let last = null;
  let done = 0;
  events.on("job:start", () => {
    if (first === null) first = now();
  });
  // Only successes count: a failed job is not a task run.
  events.on("job:complete", ({ error }) => {
    if (error) {
      console.error(`a job failed: ${error}`);
      return;
    }
    last = now();
    done++;
  });
  // Drained once no job of the task is due: a job in flight keeps its row
  // until it completes. Jobs of other tasks are not ours to wait for (one
  // left locked by a stopped latency run would never go). Looked at every
  // 50 ms, which the figures do not include.
  const { Pool } = require("pg");
  const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 1 });
  for (;;) {
    const { rows } = await pool.query(
      `SELECT EXISTS (SELECT FROM graphile_worker._private_jobs j
         JOIN graphile_worker._private_tasks t ON t.id = j.task_id
        WHERE t.identifier = $1 AND j.run_at <= now()) AS due`,
      [args[1]],
    );
    if (!rows[0].due) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await pool.end();
  await runner.stop();
  console.log(`first ${first ?? 0} last ${last ?? 0} done ${done}`);
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
