#!/usr/bin/env python3
"""Answers that moto does not give, for the AWS client's unit tests
(runtime/aws/client.h, through tests/unit/test_aws_sqs.c and
test_aws_scheduler.c): retries that must be signed afresh, error bodies in
each of AWS's shapes, and an error that quotes the request's secrets back.

It listens on 127.0.0.1 on an ephemeral port, prints "PORT <n>" once it
accepts connections, and exits when its stdin closes (the test holds the
other end and kills it by PID as well), as tests/aws/fake_http.py does.

  /flaky?key=K&fail=N   the first N requests for K answer 503
                        ServiceUnavailable, the rest 200 with the signing
                        headers of every attempt made for K so far:
                        {"attempts": [{"x-amz-date", "authorization",
                        "x-amz-security-token", "host", "x-amz-target",
                        "content-type"}, ...]}
  /quote-secrets        403 SignatureDoesNotMatch in XML whose message
                        quotes the canonical request, the security token
                        included, as AWS's own does.
  /status?code=C&body=B status C with a body of kind B: none, html,
                        json-type (a JSON __type with a namespace and a
                        suffix), json-code (a JSON "code" and "Message"),
                        xml (a query-protocol <Error>), token (plain text
                        quoting the security token across byte 200, where
                        an excerpt would be cut).
  /text                 200 with a body that is not JSON.
  /empty                200 with no body at all.
"""

import json
import os
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
SEEN = {}
SIGNING = ["x-amz-date", "authorization", "x-amz-security-token", "host",
           "x-amz-target", "content-type"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, ctype="application/json"):
        data = body.encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", "fake-request-1")
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/flaky":
            return self.flaky(query)
        if url.path == "/quote-secrets":
            return self.quote_secrets()
        if url.path == "/status":
            return self.status(query)
        if url.path == "/text":
            return self.reply(200, "hello, not json", "text/plain")
        if url.path == "/empty":
            return self.reply(200, "")
        self.reply(404, json.dumps({"message": "no route " + url.path}))

    do_GET = do_POST = do_PUT = do_DELETE = handle_any

    def flaky(self, query):
        key = query.get("key", "")
        fail = int(query.get("fail", "1"))
        with LOCK:
            seen = SEEN.setdefault(key, [])
            seen.append({h: self.headers.get(h) for h in SIGNING})
            n = len(seen)
            attempts = list(seen)
        if n <= fail:
            return self.reply(
                503,
                json.dumps({"__type": "ServiceUnavailable",
                            "message": "try again"}),
            )
        self.reply(200, json.dumps({"attempts": attempts}))

    def quote_secrets(self):
        token = self.headers.get("X-Amz-Security-Token", "")
        canonical = (
            "POST\n/quote-secrets\n\nhost:%s\nx-amz-date:%s\n"
            "x-amz-security-token:%s\n\nhost;x-amz-date;x-amz-security-token"
            % (self.headers.get("Host"), self.headers.get("X-Amz-Date"), token)
        )
        message = (
            "The request signature we calculated does not match the "
            "signature you provided. The Canonical String for this request "
            "should have been\n'%s'\n" % canonical
        )
        message = (message.replace("&", "&amp;").replace("<", "&lt;")
                   .replace(">", "&gt;").replace("'", "&apos;"))
        self.reply(
            403,
            "<ErrorResponse><Error><Type>Sender</Type>"
            "<Code>SignatureDoesNotMatch</Code><Message>%s</Message></Error>"
            "<RequestId>r-9</RequestId></ErrorResponse>" % message,
            "text/xml",
        )

    def status(self, query):
        code = int(query.get("code", "400"))
        kind = query.get("body", "none")
        if kind == "html":
            return self.reply(
                code,
                "<!doctype html>\n<html><title>%d</title>\n<h1>Internal "
                "Server Error</h1></html>\n" % code,
                "text/html",
            )
        if kind == "json-type":
            return self.reply(
                code,
                json.dumps({
                    "__type": "com.amazonaws.scheduler#ConflictException:"
                              "http://internal.amazon.com/coral/",
                    "message": "Schedule mt-1 already exists.",
                }),
            )
        if kind == "json-code":
            return self.reply(
                code,
                json.dumps({"code": "ResourceNotFoundException",
                            "Message": "Schedule mt-2 does not exist."}),
            )
        if kind == "xml":
            return self.reply(
                code,
                "<?xml version=\"1.0\"?><ErrorResponse><Error>"
                "<Type>Sender</Type>"
                "<Code>AWS.SimpleQueueService.NonExistentQueue</Code>"
                "<Message>The specified queue does not exist &amp; never "
                "did.</Message></Error><RequestId>r-1</RequestId>"
                "</ErrorResponse>",
                "text/xml",
            )
        if kind == "token":
            token = self.headers.get("X-Amz-Security-Token", "")
            return self.reply(
                code, "x" * 190 + " token " + token + " end\n", "text/plain"
            )
        self.reply(code, "")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("PORT %d" % server.server_address[1], flush=True)
    # The test holds our stdin: when it goes, so do we.
    sys.stdin.buffer.read()
    os._exit(0)


if __name__ == "__main__":
    main()
