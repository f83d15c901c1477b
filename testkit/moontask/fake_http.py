#!/usr/bin/env python3
"""A recording HTTP fake for specs: what moontask.testkit's kit.fake_http()
starts, to stand in for the API a task calls (a mail provider, a payment
provider) while `moontask try` runs the task.

  fake_http.py --dir DIR [--owner PID]

It listens on 127.0.0.1 on a port of its own and writes that port to
DIR/port once it accepts connections. Every request, whatever its method
and path, is appended to DIR/requests.jsonl as one JSON object (method,
path, headers with lower-cased names, body as text) and answered with the
reply at the same position in DIR/replies.json, a JSON list of
{status, headers, body, delay}: the first request gets the first reply,
and the last reply answers every request past the end of the list. With no
replies file it answers 200 with an empty JSON object. The files are read
on every request, so a spec changes the answers by rewriting the file.

It exits when the process --owner names is gone (the busted run that
started it), so that a spec that dies cannot leave it running; the kit
stops it by its PID otherwise.
"""

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
DEFAULT_REPLY = {"status": 200, "headers": {"Content-Type": "application/json"},
                 "body": "{}"}


def make_handler(folder):
    requests_file = os.path.join(folder, "requests.jsonl")
    replies_file = os.path.join(folder, "replies.json")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # the answer leaves in one write (no Nagle wait)

        def log_message(self, fmt, *args):
            pass

        def answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with LOCK:
                try:
                    with open(requests_file, "rb") as f:
                        index = sum(1 for _ in f)
                except FileNotFoundError:
                    index = 0
                record = {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode("utf-8", "replace"),
                }
                with open(requests_file, "a") as f:
                    f.write(json.dumps(record) + "\n")
                try:
                    with open(replies_file) as f:
                        replies = json.load(f) or [DEFAULT_REPLY]
                except FileNotFoundError:
                    replies = [DEFAULT_REPLY]
            reply = replies[min(index, len(replies) - 1)]
            time.sleep(float(reply.get("delay", 0)))
            data = reply.get("body", "").encode()
            try:
                self.send_response(int(reply.get("status", 200)))
                for name, value in (reply.get("headers") or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the task gave up waiting

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer
        do_HEAD = do_OPTIONS = answer

    return Handler


def watch(owner):
    while True:
        time.sleep(0.5)
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass  # alive, someone else's


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--owner", type=int)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(args.dir))
    server.daemon_threads = True
    if args.owner:
        threading.Thread(target=watch, args=(args.owner,), daemon=True).start()
    port_file = os.path.join(args.dir, "port")
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(port_file + ".tmp", port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
