"""Watches the system clock against the monotonic one while scripts/bench
measures latency, and on SIGTERM prints what it saw: "STEPS LARGEST_MS".

Every latency figure is a difference of two readings of the system clock
(a commit timestamp and a handler's clock_timestamp()). On the virtual
machine the bench was written on, that clock moves now and then by some 5
ms against the monotonic clock, at once; a task whose interval spans such
a step is that much off, in whichever column it falls. This tells the
reader of a run's max whether that happened.

    python3 clock_steps.py PID   runs until SIGTERM, or until process PID
                                 (the bench) is gone; prints "ready" once
                                 watching
"""

import os
import signal
import sys
import time

# A change of the offset between two looks 5 ms apart larger than this is a
# step; NTP's slewing moves it by at most 0.5 ms a second.
STEP_MS = 0.5
LOOK_S = 0.005


def offset():
    """The system clock minus the monotonic one, in seconds, from readings
    taken together: a reading interrupted by the scheduler (which would
    look like a step) is taken again."""
    while True:
        a = time.monotonic()
        wall = time.time()
        b = time.monotonic()
        if b - a < 0.00005:
            return wall - (a + b) / 2


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def main():
    bench = int(sys.argv[1])
    steps = 0
    largest = 0.0
    stop = False

    def on_term(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    before = offset()
    # A bench that failed half way never sends SIGTERM: outlive it no more
    # than a look.
    while not stop and alive(bench):
        time.sleep(LOOK_S)
        now = offset()
        moved = (now - before) * 1000
        if abs(moved) > STEP_MS:
            steps += 1
            if abs(moved) > abs(largest):
                largest = moved
        before = now
    print(f"{steps} {largest:+.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
