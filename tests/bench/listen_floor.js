// The floor under scripts/bench's latency figures: the least any runtime
// woken by LISTEN/NOTIFY can do between a task's commit and its handler's
// start. It hears the wake-up (the task's id as the payload) and notes the
// time at once: no claim, no worker, no transaction, not even a round
// trip. What a runtime adds above it is its own cost.
//
//   node listen_floor.js   runs until SIGTERM; prints "ready" once listening
//
// The times are the system clock's, which the database server on the same
// machine reads too; they are written to bench_latency every 20 ms, in
// one statement, so that the writing never delays the hearing (one INSERT
// per wake-up, each waiting for its commit, fell behind pgbench's back to
// back schedules and queued them by tens of milliseconds).
//
// Node has no microsecond reading of the system clock: a wake-up is timed
// on the monotonic clock (performance.now()) and mapped to the system
// clock when written. The mapping is taken anew every CALIBRATE_MS
// (wallOffset), not once: performance.timeOrigin, fixed when the process
// starts, stops matching the system clock when that is stepped, which the
// virtual machine this was measured on does now and then, by some 5 ms,
// and did during a full bench run (the floor's p50 came out at -4 and -19
// ms, before the commits it followed).
//
// DATABASE_URL names the database; the pg module is Graphile Worker's
// (scripts/bench sets NODE_PATH to its install).
"use strict";
const { Client } = require("pg");

const FLUSH_MS = 20;
const CALIBRATE_MS = 100;

// The system clock minus the monotonic one, in ms, read as Date.now()
// turns to its next millisecond: exact to the few microseconds the loop
// takes. Spins for up to 1 ms.
function wallOffset() {
  const first = Date.now();
  let mono, wall;
  do {
    mono = performance.now();
    wall = Date.now();
  } while (wall === first);
  return wall - mono;
}

async function main() {
  const client = new Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  let ids = [];
  let times = [];
  let offset = wallOffset();
  let calibrated = performance.now();
  client.on("notification", ({ payload }) => {
    times.push(performance.now());
    ids.push(payload);
  });
  const flush = async () => {
    if (ids.length > 0) {
      if (performance.now() - calibrated >= CALIBRATE_MS) {
        offset = wallOffset();
        calibrated = performance.now();
      }
      const batch = [ids, times.map((t) => (offset + t) / 1000)];
      ids = [];
      times = [];
      await client.query(
        "INSERT INTO bench_latency (task_id, started)\n" +
          "SELECT id, to_timestamp(t) FROM unnest($1::bigint[], $2::float8[]) AS u(id, t)",
        batch,
      );
    }
    setTimeout(() => flush().catch(fail), FLUSH_MS);
  };
  await client.query("LISTEN bench_floor");
  flush().catch(fail);
  console.log("ready");
  process.on("SIGTERM", async () => {
    await client.end();
    process.exit(0);
  });
}

function fail(e) {
  console.error(e);
  process.exit(1);
}

main().catch(fail);
