#!/usr/bin/env python3
"""A small HTTP/1.1 server for the AWS client's unit tests.

It listens on 127.0.0.1 on an ephemeral port, prints "PORT <n>" on stdout
once it accepts connections, and exits when its stdin closes: the test that
started it holds the other end, so the server cannot outlive the test even
if the test dies without stopping it (the test kills it by PID as well).

Connections are kept alive, and every response says which connection
carried it, so a test can see that its client reuses connections.

  /seq?key=K&codes=500,200[&body=KIND]
      The i-th request for key K (from 0) answers codes[min(i, last)].
      A 2xx answers the JSON "info" below; any other status a body of
      KIND: throttle-json (400 ThrottlingException, JSON protocol),
      throttle-xml (400 RequestThrottled, query protocol), invalid-json
      (400 InvalidParameterValue), or plain text by default.
  /hang?s=N       answers after N seconds (default 30): for timeouts.
  /stats          {"connections": ..., "requests": ...} so far.
  /counts         requests per path so far.

Credential endpoints, for tests/unit/test_aws_credentials.c:

  GET  /ecs/creds                           ECS container credentials; with
                                            --ecs-token, requires it in
                                            Authorization.
  PUT  /latest/api/token                    IMDSv2 session token.
  GET  /latest/meta-data/iam/security-credentials/         the role name.
  GET  /latest/meta-data/iam/security-credentials/<role>   its credentials.
  POST /sts                                 STS AssumeRoleWithWebIdentity;
                                            the token "bad-token" is refused.

With --tls-dir DIR it speaks HTTPS with a self-signed certificate for
127.0.0.1 that it makes there (DIR/cert.pem, which a test trusts as its CA
file); it exits 3 if the openssl command is missing.

Credentials expire --creds-ttl seconds after they are handed out (default
3600) and carry a serial number (ASIAECS0001, ASIAECS0002, ...) so that a
test can tell a refresh from the first fetch.
"""

import argparse
import datetime
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

LOCK = threading.Lock()
STATE = {
    "connections": 0,
    "requests": 0,
    "seq": {},
    "counts": {},
    "serial": {},
}
IMDS_TOKEN = "imds-session-token-1"
ROLE = "moontask-role"
ARGS = None


def next_serial(kind):
    with LOCK:
        n = STATE["serial"].get(kind, 0) + 1
        STATE["serial"][kind] = n
        return n


def expiration():
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
        seconds=ARGS.creds_ttl
    )
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with LOCK:
            STATE["connections"] += 1
            self.conn_id = STATE["connections"]
        self.conn_requests = 0

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, ctype="application/json", headers=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def handle_any(self):
        self.conn_requests += 1
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        with LOCK:
            STATE["requests"] += 1
            STATE["counts"][url.path] = STATE["counts"].get(url.path, 0) + 1
        route = {
            "/seq": self.seq,
            "/hang": self.hang,
            "/stats": self.stats,
            "/counts": self.counts,
            "/ecs/creds": self.ecs,
            "/latest/api/token": self.imds_token,
            "/sts": self.sts,
        }.get(url.path)
        if route is not None:
            return route(query, body)
        prefix = "/latest/meta-data/iam/security-credentials/"
        if url.path.startswith(prefix):
            return self.imds_creds(url.path[len(prefix):])
        self.reply(404, json.dumps({"message": "no route " + url.path}))

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

    def info(self, n):
        return json.dumps(
            {
                "n": n,
                "conn": self.conn_id,
                "conn_requests": self.conn_requests,
                "method": self.command,
                "attempt": self.headers.get("X-Attempt"),
            }
        )

    def seq(self, query, body):
        key = query.get("key", "")
        codes = [int(c) for c in query.get("codes", "200").split(",")]
        with LOCK:
            i = STATE["seq"].get(key, 0)
            STATE["seq"][key] = i + 1
        status = codes[min(i, len(codes) - 1)]
        headers = {"x-amzn-RequestId": "req-%s-%d" % (key, i + 1)}
        if 200 <= status < 300:
            return self.reply(status, self.info(i + 1), headers=headers)
        kind = query.get("body", "")
        if kind == "throttle-json":
            self.reply(
                status,
                json.dumps(
                    {
                        "__type": "com.amazonaws.sqs#ThrottlingException",
                        "message": "Rate exceeded",
                    }
                ),
                "application/x-amz-json-1.0",
                headers,
            )
        elif kind == "throttle-xml":
            self.reply(
                status,
                "<?xml version=\"1.0\"?><ErrorResponse><Error>"
                "<Type>Sender</Type><Code>RequestThrottled</Code>"
                "<Message>Request is throttled.</Message></Error>"
                "<RequestId>r-1</RequestId></ErrorResponse>",
                "text/xml",
                headers,
            )
        elif kind == "invalid-json":
            self.reply(
                status,
                json.dumps(
                    {
                        "__type": "com.amazonaws.sqs#InvalidParameterValue",
                        "message": "bad value",
                    }
                ),
                "application/x-amz-json-1.0",
                headers,
            )
        else:
            self.reply(status, "status %d\n" % status, "text/plain", headers)

    def hang(self, query, body):
        time.sleep(float(query.get("s", "30")))
        self.reply(200, self.info(0))

    def stats(self, query, body):
        with LOCK:
            self.reply(
                200,
                json.dumps(
                    {
                        "connections": STATE["connections"],
                        "requests": STATE["requests"],
                    }
                ),
            )

    def counts(self, query, body):
        with LOCK:
            self.reply(200, json.dumps(STATE["counts"]))

    def creds(self, kind):
        n = next_serial(kind)
        return {
            "AccessKeyId": "ASIA%s%04d" % (kind.upper(), n),
            "SecretAccessKey": "%s-secret-%d" % (kind, n),
            "Token": "%s-session-token-%d" % (kind, n),
            "Expiration": expiration(),
        }

    def ecs(self, query, body):
        if ARGS.ecs_token and self.headers.get("Authorization") != ARGS.ecs_token:
            return self.reply(
                401, json.dumps({"code": "Unauthorized", "message": "bad token"})
            )
        c = self.creds("ecs")
        c["RoleArn"] = "arn:aws:iam::123456789012:role/" + ROLE
        self.reply(200, json.dumps(c))

    def imds_token(self, query, body):
        if self.command != "PUT":
            return self.reply(405, "", "text/plain")
        if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self.reply(400, "", "text/plain")
        self.reply(200, IMDS_TOKEN, "text/plain")

    def imds_creds(self, role):
        if self.headers.get("X-aws-ec2-metadata-token") != IMDS_TOKEN:
            return self.reply(401, "", "text/plain")
        if role == "":
            return self.reply(200, ROLE, "text/plain")
        if role != ROLE:
            return self.reply(404, "", "text/plain")
        c = self.creds("imds")
        c.update(
            {
                "Code": "Success",
                "LastUpdated": expiration(),
                "Type": "AWS-HMAC",
            }
        )
        self.reply(200, json.dumps(c))

    def sts(self, query, body):
        form = dict(urllib.parse.parse_qsl(body.decode()))
        if form.get("Action") != "AssumeRoleWithWebIdentity":
            return self.reply(400, "<ErrorResponse><Error><Code>InvalidAction"
                              "</Code></Error></ErrorResponse>", "text/xml")
        if form.get("WebIdentityToken") == "bad-token":
            return self.reply(
                400,
                "<ErrorResponse><Error><Type>Sender</Type>"
                "<Code>InvalidIdentityToken</Code>"
                "<Message>Couldn't retrieve verification key from your "
                "identity provider</Message></Error>"
                "<RequestId>r-2</RequestId></ErrorResponse>",
                "text/xml",
            )
        c = self.creds("sts")
        self.reply(
            200,
            "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
            "<Credentials><AccessKeyId>%s</AccessKeyId>"
            "<SecretAccessKey>%s</SecretAccessKey>"
            "<SessionToken>%s</SessionToken>"
            "<Expiration>%s</Expiration></Credentials>"
            "<SubjectFromWebIdentityToken>%s</SubjectFromWebIdentityToken>"
            "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
            % (
                c["AccessKeyId"],
                c["SecretAccessKey"],
                c["Token"],
                c["Expiration"],
                form.get("RoleSessionName", ""),
            ),
            "text/xml",
        )


def tls_context(directory):
    if shutil.which("openssl") is None:
        print("the openssl command is missing", file=sys.stderr, flush=True)
        sys.exit(3)
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--creds-ttl", type=int, default=3600)
    parser.add_argument("--ecs-token", default="")
    parser.add_argument("--tls-dir", default="")
    ARGS = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if ARGS.tls_dir:
        server.socket = tls_context(ARGS.tls_dir).wrap_socket(
            server.socket, server_side=True
        )
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("PORT %d" % server.server_address[1], flush=True)
    # The test holds our stdin: when it goes, so do we.
    sys.stdin.buffer.read()
    os._exit(0)


if __name__ == "__main__":
    main()
