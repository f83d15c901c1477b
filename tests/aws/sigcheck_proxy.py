#!/usr/bin/env python3
"""An HTTP proxy in front of moto that checks every request's SigV4
signature against botocore's signer.

moto accepts any signature, so a client could sign wrongly and still pass
every test against it. Pointed at this proxy instead, a client's requests
are each signed again by botocore (botocore.auth.SigV4Auth, over an
AWSRequest rebuilt from the request's method, URL, signed headers and body,
with the credentials given here, the region and service of the request's
Credential scope, at the request's own X-Amz-Date), and the two signatures
are compared. Each check is one JSON line in the --log file:

  {"op": "SendMessage", "ok": true, "expected": "<botocore's>",
   "got": "<the request's>", "method": "POST", "path": "/",
   "service": "sqs", "region": "us-east-1"}

with a "reason" when ok is false (no or malformed Authorization, another
access key, other signed headers, or just another signature). The request
is then forwarded to --upstream either way, and moto's answer relayed; with
--strict, a request that fails the check gets 403 SignatureDoesNotMatch,
as AWS would answer, and never reaches moto.

With --throttle, the proxy also plays AWS's rate limits, for tests of
how a client copes with them: the first N requests of each operation
(--throttle N), or of one operation (--throttle OP=N, which overrides a
plain N for OP; --throttle OP=0 spares OP), are answered as throttled
and never reach moto. Counting per operation and from the proxy's start
makes it deterministic: with N below a client's number of attempts
every call gets through on a retry, and with N at or above it calls
fail and must be tried again later. The answers are AWS's, in the
request's protocol:
  - JSON protocols (an X-Amz-Target, as SQS's): HTTP 400,
    {"__type":"com.amazonaws.sqs#ThrottlingException",
     "message":"Rate exceeded"} (the service of the request's Credential
    scope in the namespace), with x-amzn-query-error
    "ThrottlingException;Sender";
  - REST protocols (EventBridge Scheduler's): HTTP 429,
    {"message":"Rate exceeded"}, header x-amzn-ErrorType
    ThrottlingException;
  - the query protocol (a form-encoded Action, as STS's): HTTP 400, an
    XML ErrorResponse with Code Throttling.
The check of a throttled request is logged with "throttled": true added
(the op and the signature check as for any other). A request that fails
the signature check with --strict is refused before any throttling.

  sigcheck_proxy.py --log FILE [--upstream URL] [--access-key K]
                    [--secret-key S] [--session-token T] [--strict]
                    [--throttle [OP=]N ...] [--port N]
                    [--until-stdin-closes]

--upstream defaults to $MT_TEST_AWS_ENDPOINT, the credentials to
$AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY and $AWS_SESSION_TOKEN. It
listens on 127.0.0.1 on an ephemeral port (or --port) and prints
"PORT <n>" on stdout once it accepts connections (the line fake_server.h
waits for). It runs until SIGTERM or SIGINT, or with --until-stdin-closes
until its stdin closes too (for a C test that starts it through
fake_server.h). Exits 3 if botocore is not installed.

The operation is the X-Amz-Target's (JSON protocols), the Action parameter
(query protocol), or the operation of botocore's model of the service whose
HTTP method and request URI match (REST protocols, as EventBridge
Scheduler's). Connections from the client are kept alive; each request
goes to moto on a connection of its own, with the client's Host header, so
that the URLs moto answers with (queue URLs) point back at the proxy.
"""

import argparse
import datetime as dt
import hashlib
import http.client
import json
import os
import re
import signal
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    import botocore.auth
    import botocore.session
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError:
    print("sigcheck_proxy.py needs botocore (pip install boto3)", file=sys.stderr)
    sys.exit(3)

ARGS = None
LOG_LOCK = threading.Lock()
# SigV4Auth.add_auth signs at botocore.auth.get_current_datetime(); the
# checks replace that clock with the request's X-Amz-Date, one at a time.
CLOCK_LOCK = threading.Lock()
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "transfer-encoding", "upgrade", "expect", "content-length"}
MISMATCH = ("The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. "
            "Consult the service documentation for details.")
AUTH = re.compile(r"AWS4-HMAC-SHA256\s+(.*)", re.S)
_models = {}
_models_lock = threading.Lock()
# --throttle: how many requests of each operation are still to be
# throttled, and the default for operations not yet seen.
THROTTLE_LOCK = threading.Lock()
THROTTLE_LEFT = {}
THROTTLE_DEFAULT = 0
RATE_EXCEEDED = "Rate exceeded"


def rest_operation(service, method, path):
    """The operation of botocore's model of service whose HTTP method and
    request URI match, or None."""
    with _models_lock:
        if service not in _models:
            try:
                model = botocore.session.get_session().get_service_model(service)
                ops = []
                for name in model.operation_names:
                    http = model.operation_model(name).http
                    uri = http.get("requestUri", "/").split("?")[0]
                    literal = len(re.sub(r"\{[^}]*\}", "", uri))
                    regex = re.escape(uri)
                    regex = re.sub(r"\\\{[^}]*\\\+\\\}", ".+", regex)
                    regex = re.sub(r"\\\{[^}]*\\\}", "[^/]+", regex)
                    ops.append((literal, http.get("method"), re.compile(regex + "/?"), name))
                _models[service] = sorted(ops, key=lambda o: -o[0])
            except Exception:  # noqa: BLE001 - an unknown service has no model
                _models[service] = []
    for _, m, regex, name in _models[service]:
        if m == method and regex.fullmatch(path):
            return name
    return None


def operation(method, path, query, headers, body, service):
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    params = dict(urllib.parse.parse_qsl(query))
    if "Action" not in params and "x-www-form-urlencoded" in (headers.get("Content-Type") or ""):
        params = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
    if "Action" in params:
        return params["Action"]
    return rest_operation(service, method, path) if service else None


def check(method, raw_path, headers, body):
    """The log record of one request's signature check."""
    path, _, query = raw_path.partition("?")
    rec = {"op": None, "ok": False, "expected": None, "got": None, "method": method, "path": path}
    auth = headers.get("Authorization")
    m = AUTH.fullmatch((auth or "").strip())
    fields = {}
    if m:
        for part in m.group(1).split(","):
            key, _, value = part.strip().partition("=")
            fields[key] = value
    scope = fields.get("Credential", "").split("/")
    service = scope[3] if len(scope) == 5 else None
    rec["op"] = operation(method, path, query, headers, body, service) or "%s %s" % (method, path)
    if not m or len(scope) != 5 or scope[4] != "aws4_request" or "Signature" not in fields \
            or "SignedHeaders" not in fields:
        rec["reason"] = "no SigV4 Authorization header" if not auth else "malformed Authorization header"
        return rec
    key, date, region, service, _ = scope
    rec.update(service=service, region=region, got=fields["Signature"])
    amz_date = headers.get("X-Amz-Date")
    try:
        when = dt.datetime.strptime(amz_date or "", "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        rec["reason"] = "no valid X-Amz-Date header: %r" % amz_date
        return rec

    # The request as the client signed it: its method, URL (as sent, which
    # botocore encodes again for the canonical path, as for its own
    # requests), the headers it says it signed, and its body.
    signed = fields["SignedHeaders"].split(";")
    url = "http://%s%s" % (headers.get("Host", ""), raw_path)
    request = AWSRequest(method=method, url=url, data=body)
    for name in signed:
        for value in headers.get_all(name) or []:
            request.headers[name] = value
    creds = Credentials(ARGS.access_key, ARGS.secret_key, ARGS.session_token)
    with CLOCK_LOCK:
        saved = botocore.auth.get_current_datetime
        botocore.auth.get_current_datetime = lambda *a, **k: when.replace(tzinfo=None)
        try:
            botocore.auth.SigV4Auth(creds, service, region).add_auth(request)
        finally:
            botocore.auth.get_current_datetime = saved
    ours = dict(part.strip().partition("=")[::2]
                for part in AUTH.fullmatch(request.headers["Authorization"]).group(1).split(","))
    rec["expected"] = ours["Signature"]
    # botocore takes a signed X-Amz-Content-SHA256 for the payload's hash,
    # as AWS does after checking it against the body; check it here.
    claimed = headers.get("X-Amz-Content-SHA256")
    if request.headers.get("X-Amz-Date") != amz_date and "Date" not in request.headers:
        rec["reason"] = "botocore signed at %s, not at the request's X-Amz-Date" % request.headers.get("X-Amz-Date")
    elif claimed and claimed != "UNSIGNED-PAYLOAD" and claimed != hashlib.sha256(body).hexdigest():
        rec["reason"] = "X-Amz-Content-SHA256 is not the body's SHA-256"
    elif key != ARGS.access_key:
        rec["reason"] = "signed with access key %s, not %s" % (key, ARGS.access_key)
    elif date != when.strftime("%Y%m%d"):
        rec["reason"] = "the Credential scope's date %s is not X-Amz-Date's" % date
    elif ours["SignedHeaders"] != fields["SignedHeaders"]:
        rec["reason"] = "signed headers %s; botocore signs %s" % (fields["SignedHeaders"], ours["SignedHeaders"])
    elif ours["Signature"] != fields["Signature"]:
        rec["reason"] = "signature mismatch"
    else:
        rec["ok"] = True
    return rec


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status, reason, headers, body):
        self.send_response(status, reason)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def refuse(self, rec):
        """403 SignatureDoesNotMatch, in the request's protocol."""
        rid = "sigcheck-%d" % threading.get_ident()
        if self.headers.get("X-Amz-Target") or "json" in (self.headers.get("Content-Type") or ""):
            body = json.dumps({"__type": "SignatureDoesNotMatch", "message": MISMATCH}).encode()
            headers = [("Content-Type", "application/x-amz-json-1.0"),
                       ("x-amzn-ErrorType", "SignatureDoesNotMatch"), ("x-amzn-RequestId", rid)]
            if rec.get("service") == "sqs":
                headers.append(("x-amzn-query-error", "SignatureDoesNotMatch;Sender"))
        elif self.command == "POST" and "x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
            body = ("<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>"
                    "<Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>" % (MISMATCH, rid)).encode()
            headers = [("Content-Type", "text/xml")]
        else:
            body = json.dumps({"message": MISMATCH}).encode()
            headers = [("Content-Type", "application/json"),
                       ("x-amzn-ErrorType", "SignatureDoesNotMatch"), ("x-amzn-RequestId", rid)]
        self.reply(403, "Forbidden", headers, body)

    def should_throttle(self, op):
        """Whether this request of op is one of the first N (--throttle)."""
        with THROTTLE_LOCK:
            left = THROTTLE_LEFT.setdefault(op, THROTTLE_DEFAULT)
            if left <= 0:
                return False
            THROTTLE_LEFT[op] = left - 1
            return True

    def throttle(self, rec):
        """A throttling error, in the request's protocol, as AWS answers."""
        rid = "sigcheck-throttle-%d" % threading.get_ident()
        ctype = self.headers.get("Content-Type") or ""
        if self.headers.get("X-Amz-Target"):
            body = json.dumps({"__type": "com.amazonaws.%s#ThrottlingException" % (rec.get("service") or "sqs"),
                               "message": RATE_EXCEEDED}).encode()
            headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", rid),
                       ("x-amzn-query-error", "ThrottlingException;Sender")]
            self.reply(400, "Bad Request", headers, body)
        elif self.command == "POST" and "x-www-form-urlencoded" in ctype:
            body = ("<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                    "<Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>"
                    % (RATE_EXCEEDED, rid)).encode()
            self.reply(400, "Bad Request", [("Content-Type", "text/xml")], body)
        else:
            body = json.dumps({"message": RATE_EXCEEDED}).encode()
            headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", "ThrottlingException"),
                       ("x-amzn-RequestId", rid)]
            self.reply(429, "Too Many Requests", headers, body)

    def forward(self, body):
        up = urllib.parse.urlsplit(ARGS.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=60)
        try:
            headers = {}
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    headers.setdefault(name, []).append(value)
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, values in headers.items():
                for value in values:
                    conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            self.reply(resp.status, resp.reason, resp.getheaders(), data)
        except OSError as e:
            self.reply(502, "Bad Gateway", [("Content-Type", "text/plain")],
                       ("sigcheck_proxy: %s unreachable: %s\n" % (ARGS.upstream, e)).encode())
        finally:
            conn.close()

    def handle_any(self):
        body = self.read_body()
        try:
            rec = check(self.command, self.path, self.headers, body)
        except Exception as e:  # noqa: BLE001 - a check that breaks is a failed check
            rec = {"op": None, "ok": False, "expected": None, "got": None, "method": self.command,
                   "path": self.path.partition("?")[0], "reason": "check failed: %r" % e}
        refuse = ARGS.strict and not rec["ok"]
        throttled = not refuse and self.should_throttle(rec["op"])
        if throttled:
            rec["throttled"] = True
        with LOG_LOCK, open(ARGS.log, "a") as f:
            f.write(json.dumps(rec) + "\n")
        if refuse:
            self.refuse(rec)
        elif throttled:
            self.throttle(rec)
        else:
            self.forward(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


def main():
    global ARGS, THROTTLE_DEFAULT
    parser = argparse.ArgumentParser(description="Checks SigV4 signatures with botocore's signer on the way to moto.")
    parser.add_argument("--upstream", default=os.environ.get("MT_TEST_AWS_ENDPOINT"))
    parser.add_argument("--log", required=True, help="file the checks are appended to, one JSON line each")
    parser.add_argument("--access-key", default=os.environ.get("AWS_ACCESS_KEY_ID"))
    parser.add_argument("--secret-key", default=os.environ.get("AWS_SECRET_ACCESS_KEY"))
    parser.add_argument("--session-token", default=os.environ.get("AWS_SESSION_TOKEN"))
    parser.add_argument("--strict", action="store_true", help="answer 403 instead of forwarding a bad signature")
    parser.add_argument("--throttle", action="append", default=[], metavar="[OP=]N",
                        help="answer the first N requests of each operation (or of OP) as throttled")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--until-stdin-closes", action="store_true")
    ARGS = parser.parse_args()
    if not ARGS.upstream:
        parser.error("--upstream is required (or set MT_TEST_AWS_ENDPOINT)")
    if not ARGS.access_key or not ARGS.secret_key:
        parser.error("--access-key and --secret-key are required (or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
    for spec in ARGS.throttle:
        op, _, n = spec.rpartition("=")
        if not n.isdigit():
            parser.error("--throttle %r: expected N or OP=N, N a whole number" % spec)
        if op:
            THROTTLE_LEFT[op] = int(n)
        else:
            THROTTLE_DEFAULT = int(n)

    # The runtime opens dozens of connections at once (the outbox relay's
    # round); socketserver's backlog of 5 would refuse most of them.
    ThreadingHTTPServer.request_queue_size = 256
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    print("PORT %d" % server.server_address[1], flush=True)
    if ARGS.until_stdin_closes:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        sys.stdin.buffer.read()
        os._exit(0)
    server.serve_forever()


if __name__ == "__main__":
    main()
