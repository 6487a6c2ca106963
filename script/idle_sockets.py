"""Idle-socket flood against a running tunewright: /health latency before and during.

Opens SOCKETS connections to the service from WORKERS processes (each under the per-process
open-file limit); half send nothing, half send one header byte every 2 s (a slow-loris client).
Meanwhile it times GET /health over fresh connections and prints the latency percentiles
measured before the flood and while it holds, in one run. Loopback only.
"""

import argparse
import http.client
import multiprocessing as mp
import socket
import statistics
import time


def flood(port: int, count: int, hold_s: float, ready: mp.Event, opened) -> None:
    socks = []
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(True)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        socks.append((s, i % 2 == 0))
    with opened.get_lock():
        opened.value += len(socks)
    ready.set()
    end = time.monotonic() + hold_s
    header = b"GET /health HTTP/1.1\r\nHost: x\r\n"
    sent = 0
    while time.monotonic() < end:
        for s, slow in socks:
            if slow and sent < len(header):
                try:
                    s.send(header[sent : sent + 1])
                except OSError:
                    pass
        sent += 1
        time.sleep(2)
    closed = 0
    for s, _ in socks:
        try:
            s.setblocking(False)
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    print(f"  worker: {len(socks)} sockets opened, {closed} closed by the server by the end")


def health_latencies(port: int, n: int) -> list:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/health")
            r = c.getresponse()
            r.read()
            ok = r.status == 200
            c.close()
        except OSError:
            ok = False
        dt = (time.perf_counter() - t0) * 1000
        out.append(dt if ok else float("inf"))
        time.sleep(0.01)
    return out


def report(name: str, xs: list) -> None:
    xs = sorted(xs)
    failed = sum(1 for x in xs if x == float("inf"))
    ok = [x for x in xs if x != float("inf")]
    if not ok:
        print(f"{name}: all {len(xs)} requests failed")
        return
    p = lambda q: ok[min(len(ok) - 1, int(q * len(ok)))]
    print(
        f"{name}: n={len(xs)} failed={failed} p50={p(0.5):.2f} ms p90={p(0.9):.2f} ms "
        f"p99={p(0.99):.2f} ms max={ok[-1]:.2f} ms mean={statistics.mean(ok):.2f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sockets", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--hold-secs", type=float, default=30)
    ap.add_argument("--server-pid", type=int)
    a = ap.parse_args()
    report("/health before the flood", health_latencies(a.port, a.requests))
    opened = mp.Value("i", 0)
    events, procs = [], []
    t0 = time.monotonic()
    for w in range(a.workers):
        ev = mp.Event()
        share = a.sockets // a.workers + (1 if w < a.sockets % a.workers else 0)
        p = mp.Process(target=flood, args=(a.port, share, a.hold_secs, ev, opened))
        p.start()
        events.append(ev)
        procs.append(p)
    for ev in events:
        ev.wait()
    print(f"{opened.value} idle sockets opened in {time.monotonic() - t0:.1f} s")
    report("/health during the flood", health_latencies(a.port, a.requests))
    if a.server_pid:
        import os

        fds = len(os.listdir(f"/proc/{a.server_pid}/fd"))
        print(f"server open files during the flood: {fds}")
    for p in procs:
        p.join()


if __name__ == "__main__":
    main()
