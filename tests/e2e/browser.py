#!/usr/bin/env python3
"""Drives headless Chromium for the status page's browser test
(test_status_page.sh), through the DevTools protocol over a pipe
(--remote-debugging-pipe: JSON messages ending in NUL on file descriptors 3
and 4), so that no WebSocket library or npm package is needed.

    browser.py URL SCRIPT.json

SCRIPT is a list of steps, run in order; each is an object with one of:
  {"open": PATH}                  load BASE URL + PATH and wait for it
  {"text": [S, ...]}              the page's text contains each S
  {"no_text": [S, ...]}           ... and none of these
  {"count": [SELECTOR, N]}        SELECTOR matches exactly N elements
  {"fill": [SELECTOR, VALUE]}     set an input's value
  {"click": SELECTOR}             click it and wait for the page it loads
  {"screenshot": FILE}            save a PNG of the whole page
A failed step prints what the page showed and exits 1.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self):
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            sys.exit("chromium is not installed")
        self.profile = tempfile.mkdtemp(prefix="moontask-chromium.")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def pipes():  # in the child: the protocol's descriptors 3 and 4
            # Out of the way first: a pipe may already be 3 or 4, and
            # dup2 onto itself would leave it close-on-exec.
            os.dup2(to_chrome_r, 100)
            os.dup2(from_chrome_w, 101)
            os.dup2(100, 3)
            os.dup2(101, 4)

        args = [chromium, "--headless=new", "--disable-gpu",
                "--remote-debugging-pipe", "--user-data-dir=" + self.profile,
                "--no-first-run", "--window-size=900,1400", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses root otherwise
        self.proc = subprocess.Popen(args, preexec_fn=pipes, close_fds=False,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf = b""
        self.next_id = 0
        self.events = []
        target = self.call("Target.createTarget", {"url": "about:blank"})
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target["targetId"],
                                  "flatten": True})["sessionId"]
        self.call("Page.enable", session=True)

    def close(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read(self, deadline):
        while b"\0" not in self.buf:
            if time.time() > deadline:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self.from_chrome, 65536)
            if not chunk:
                raise EOFError("chromium went away")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=False, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            m = self._read(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method, timeout=30):
        deadline = time.time() + timeout
        while True:
            for i, m in enumerate(self.events):
                if m.get("method") == method:
                    del self.events[i]
                    return m
            self.events.append(self._read(deadline))

    def eval(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression,
                                           "returnByValue": True},
                      session=True)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expression, r["exceptionDetails"]))
        return r["result"].get("value")


def main():
    base, script = sys.argv[1], json.load(open(sys.argv[2]))
    b = Browser()
    try:
        for n, step in enumerate(script, 1):
            kind, arg = next(iter(step.items()))
            problem = None
            if kind == "open":
                b.events.clear()
                b.call("Page.navigate", {"url": base + arg}, session=True)
                b.wait_event("Page.loadEventFired")
            elif kind in ("text", "no_text"):
                text = b.eval("document.body.innerText")
                for s in arg:
                    if (s in text) != (kind == "text"):
                        problem = "%r %s on the page" % (
                            s, "is not" if kind == "text" else "is")
            elif kind == "count":
                got = b.eval("document.querySelectorAll(%s).length"
                             % json.dumps(arg[0]))
                if got != arg[1]:
                    problem = "%s matches %s elements, not %s" % (arg[0], got,
                                                                  arg[1])
            elif kind == "fill":
                ok = b.eval("(e => e ? (e.value = %s, true) : false)"
                            "(document.querySelector(%s))"
                            % (json.dumps(arg[1]), json.dumps(arg[0])))
                if not ok:
                    problem = "nothing matches %s" % arg[0]
            elif kind == "click":
                b.events.clear()
                ok = b.eval("(e => e ? (e.click(), true) : false)"
                            "(document.querySelector(%s))" % json.dumps(arg))
                if not ok:
                    problem = "nothing matches %s" % arg
                else:
                    b.wait_event("Page.loadEventFired")
            elif kind == "screenshot":
                shot = b.call("Page.captureScreenshot",
                              {"format": "png", "captureBeyondViewport": True},
                              session=True)
                with open(arg, "wb") as f:
                    f.write(base64.b64decode(shot["data"]))
            else:
                problem = "unknown step %r" % kind
            if problem:
                print("step %d (%s): %s\n--- the page ---\n%s" % (
                    n, json.dumps(step), problem,
                    b.eval("document.body.innerText")), file=sys.stderr)
                sys.exit(1)
            print("ok step %d: %s" % (n, json.dumps(step)[:100]))
    finally:
        b.close()


if __name__ == "__main__":
    main()
