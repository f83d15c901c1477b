#!/usr/bin/env python3
"""The HTTP server moontask.http's unit tests run against
(tests/unit/test_toolkit_http.c, through tests/aws/fake_server.h).

It listens on 127.0.0.1 on an ephemeral port, prints "PORT <n>" once it
accepts connections, and exits when its stdin closes, so it cannot outlive
the test that started it.

  /echo              any method: 200 with a JSON description of the
                     request: method, path, headers (names lower-cased),
                     body (text)
  /json              200 application/json with values a faithful decoder
                     keeps apart: 2^53 + 1, [] and {}, null
  /notjson           200 text/html
  /status/<n>        answers status n
  /headers           a header sent twice, and mixed-case names
  /redirect/<n>      302 to /redirect/<n-1>; /redirect/0 answers 200
  /slow?s=N          sends nothing for N seconds, then 200
  /drip?s=N          sends the headers at once, then a byte every 0.1 s for
                     N seconds (data keeps flowing past any deadline)
  /big?n=N           N bytes with a Content-Length
  /chunked?n=N       N bytes, chunked, with no length announced

With --tls-dir DIR it speaks HTTPS with a self-signed certificate for
127.0.0.1 made there by the openssl command (exit 3 without it): a client
that verifies certificates must refuse it.
"""

import argparse
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffered, so that headers and body leave in one write: written apart,
    # Nagle's algorithm and delayed ACKs hold each answer ~40 ms.
    # (handle_one_request flushes after every request.)
    wbufsize = 1 << 16

    def log_message(self, fmt, *args):
        pass

    def send(self, status, body, ctype="text/plain", extra=()):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        parts = url.path.strip("/").split("/")
        received = self.body()
        try:
            if parts[0] == "echo":
                self.send(200, json.dumps({
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": received.decode("utf-8", "replace"),
                }), "application/json")
            elif parts[0] == "json":
                self.send(200, '{"id": 42, "big": 9007199254740993, '
                          '"list": [], "obj": {}, "none": null, '
                          '"name": "caf\\u00e9"}', "application/json")
            elif parts[0] == "notjson":
                self.send(200, "<html>not json</html>", "text/html")
            elif parts[0] == "status":
                self.send(int(parts[1]), "status " + parts[1])
            elif parts[0] == "headers":
                self.send(200, "ok", "text/plain", [
                    ("X-Multi", "one"), ("X-Multi", "two"),
                    ("X-MiXeD-Case", "  padded  ")])
            elif parts[0] == "redirect":
                n = int(parts[1])
                if n <= 0:
                    self.send(200, "arrived")
                else:
                    self.send(302, "moved", "text/plain",
                              [("Location", "/redirect/%d" % (n - 1))])
            elif parts[0] == "slow":
                time.sleep(float(query.get("s", "30")))
                self.send(200, "late")
            elif parts[0] == "drip":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.flush()
                end = time.monotonic() + float(query.get("s", "30"))
                while time.monotonic() < end:
                    self.wfile.write(b"1\r\nx\r\n")
                    self.wfile.flush()
                    time.sleep(0.1)
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            elif parts[0] == "big":
                self.send(200, b"x" * int(query["n"]))
            elif parts[0] == "chunked":
                n = int(query["n"])
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                step = 65536
                for i in range(0, n, step):
                    chunk = b"y" * min(step, n - i)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            else:
                self.send(404, "no such endpoint")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as the deadline tests make it

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any
    do_OPTIONS = handle_any


def make_cert(folder):
    if shutil.which("openssl") is None:
        print("openssl is missing", file=sys.stderr)
        sys.exit(3)
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tls-dir")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if args.tls_dir:
        cert, key = make_cert(args.tls_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("PORT %d" % server.server_address[1], flush=True)
    sys.stdin.read()  # returns when the test closes its end
    os._exit(0)


if __name__ == "__main__":
    main()
