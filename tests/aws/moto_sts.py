#!/usr/bin/env python3
"""moto's AWS mock on 127.0.0.1 and an ephemeral port, for the credential
tests' STS calls. Prints "PORT <n>" once it accepts connections and exits
when its stdin closes (the test that started it holds the other end; it
also kills it by PID). Exits 3 if moto is not installed."""

import logging
import os
import sys

try:
    from moto.server import ThreadedMotoServer
except ImportError:
    print("moto is not installed", file=sys.stderr, flush=True)
    sys.exit(3)


def main():
    # werkzeug logs every request on stderr; the test's output is for it.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print("PORT %d" % server.get_host_and_port()[1], flush=True)
    sys.stdin.buffer.read()
    os._exit(0)


if __name__ == "__main__":
    main()
