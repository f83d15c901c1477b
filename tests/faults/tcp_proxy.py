#!/usr/bin/env python3
"""A TCP proxy in front of PostgreSQL for the fault suite, whose mode a test
switches while it runs.

    tcp_proxy.py --listen 127.0.0.1:15432 --upstream /path/.s.PGSQL.5432 \\
                 --control MODE_FILE --state STATE_FILE [--drop-packets]

The upstream is a Unix socket path, or HOST:PORT. The proxy reads the mode
from the control file (one word, re-read every 0.1 s) and, once it has
switched, writes the mode to the state file, which the test waits for:

  forward    relays every connection, both ways.
  refuse     the database is unreachable and says so: the listening socket
             is closed (a connection attempt is refused at once) and every
             connection is reset.
  blackhole  the database is unreachable and says nothing: nothing is
             relayed any more, and with --drop-packets no packet on the
             loopback device arrives (they are held in a plugged queue, see
             plug_loopback), so that neither data nor keepalive probes are
             acknowledged and connection attempts go unanswered: a peer
             learns of it only from its own timeouts. (Without it, the
             kernel acknowledges what the proxy receives, and a client's
             keepalives would keep finding the connection alive.) Leaving
             blackhole closes the connections it held, as a firewall that
             lost their state would: a client that still uses one is reset.

--drop-packets changes the loopback device of the proxy's network
namespace, so the proxy refuses it where it sees any device but lo: run it
in a namespace of its own (`unshare --net`, entered with `nsenter`), with
the clients it serves.
"""
import argparse
import os
import socket
import struct
import subprocess
import sys
import threading
import time

MODES = ("forward", "refuse", "blackhole")


def log(msg):
    print("tcp_proxy: %s" % msg, file=sys.stderr, flush=True)


class Pair:
    """One client connection and its upstream connection."""

    def __init__(self, client, upstream):
        self.client = client
        self.upstream = upstream
        self.open = True


class Proxy:
    def __init__(self, args):
        self.listen = args.listen
        self.upstream = args.upstream
        self.control = args.control
        self.state = args.state
        self.drop_packets = args.drop_packets
        self.cond = threading.Condition()
        self.mode = None
        self.pairs = set()
        self.listener = None

    # -- sockets --------------------------------------------------------------

    def open_listener(self):
        host, port = self.listen.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, int(port)))
        s.listen(128)
        s.settimeout(0.1)
        self.listener = s

    def close_listener(self):
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def connect_upstream(self):
        if self.upstream.startswith("/"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.upstream)
        else:
            host, port = self.upstream.rsplit(":", 1)
            s = socket.create_connection((host, int(port)))
        return s

    @staticmethod
    def end(sock, reset):
        """Ends a socket another thread may be blocked on: shutdown wakes
        that thread, and a zero linger makes close send a reset."""
        try:
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RD)
            else:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def drop(self, pair, reset):
        with self.cond:
            if not pair.open:
                return
            pair.open = False
            self.pairs.discard(pair)
            self.cond.notify_all()
        self.end(pair.client, reset)
        self.end(pair.upstream, False)

    def relay(self, pair, src, dst):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            with self.cond:
                if not pair.open:
                    return
                # Silently dropped: the connection is closed when the
                # blackhole ends.
                if self.mode == "blackhole":
                    continue
            try:
                dst.sendall(data)
            except OSError:
                break
        self.drop(pair, reset=False)

    def accept(self):
        try:
            client, _ = self.listener.accept()
        except (socket.timeout, OSError):
            return
        client.settimeout(None)
        try:
            upstream = self.connect_upstream()
        except OSError as e:
            log("cannot reach the upstream %s: %s" % (self.upstream, e))
            self.end(client, True)
            return
        pair = Pair(client, upstream)
        with self.cond:
            self.pairs.add(pair)
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self.relay, args=(pair, src, dst),
                             daemon=True).start()

    # -- modes ----------------------------------------------------------------

    @staticmethod
    def plug_loopback():
        """Holds every packet on lo from now on, as a network that lost
        them would: a token bucket of 1 byte/s, its first tokens used up
        by a datagram and the next one queued, which every later packet
        waits behind. Senders see their packets leave, as they would on a
        real network. (A qdisc that drops them instead would tell TCP at
        once, and TCP gives up within seconds whatever its settings; sch_plug
        and netem, made for this, are not in every kernel.)"""
        subprocess.run(["tc", "qdisc", "replace", "dev", "lo", "root", "tbf",
                        "rate", "8bit", "burst", "10000", "limit", "100000000"],
                       check=True)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(2):
            udp.sendto(b"\0" * 9000, ("127.0.0.1", 9))
        udp.close()

    @staticmethod
    def unplug_loopback():
        """Back to no queue: what the plug held is thrown away, and the
        senders' retransmissions get through."""
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], check=True)

    def set_mode(self, mode):
        old = self.mode
        if mode == old:
            return
        with self.cond:
            self.mode = mode
            held = list(self.pairs) if old == "blackhole" or mode == "refuse" else []
        for pair in held:
            self.drop(pair, reset=True)
        if mode == "refuse":
            self.close_listener()
        elif self.listener is None:
            self.open_listener()
        if self.drop_packets and mode == "blackhole":
            self.plug_loopback()
        elif self.drop_packets and old == "blackhole":
            self.unplug_loopback()
        log("%s (%d connections ended)" % (mode, len(held)))
        tmp = self.state + ".tmp"
        with open(tmp, "w") as f:
            f.write(mode + "\n")
        os.replace(tmp, self.state)

    def read_control(self):
        try:
            with open(self.control) as f:
                mode = f.read().strip()
        except FileNotFoundError:
            return "forward"
        if mode not in MODES:
            log("unknown mode %r ignored" % mode)
            return self.mode
        return mode

    def run(self):
        self.set_mode(self.read_control())
        next_look = 0.0
        while True:
            now = time.monotonic()
            if now >= next_look:
                self.set_mode(self.read_control())
                next_look = now + 0.1
            if self.listener is not None:
                self.accept()
            else:
                time.sleep(0.1)


def own_network_namespace():
    """Whether lo is the only network device the proxy sees, as in a
    namespace that `unshare --net` made (/proc/self/net is the reader's
    namespace's; the init process's namespace may not be readable)."""
    with open("/proc/self/net/dev") as f:
        devices = [line.split(":")[0].strip() for line in f if ":" in line]
    return devices == ["lo"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", required=True, help="HOST:PORT to listen on")
    p.add_argument("--upstream", required=True,
                   help="a Unix socket path, or HOST:PORT")
    p.add_argument("--control", required=True, help="file holding the mode")
    p.add_argument("--state", required=True,
                   help="file the applied mode is written to")
    p.add_argument("--drop-packets", action="store_true",
                   help="in blackhole mode, let no packet on lo arrive")
    args = p.parse_args()
    if args.drop_packets and not own_network_namespace():
        sys.exit("tcp_proxy: --drop-packets changes the loopback device: "
                 "run it in a network namespace of its own (unshare --net)")
    proxy = Proxy(args)
    try:
        proxy.run()
    except KeyboardInterrupt:
        pass
    finally:
        if args.drop_packets and proxy.mode == "blackhole":
            proxy.unplug_loopback()


if __name__ == "__main__":
    main()
