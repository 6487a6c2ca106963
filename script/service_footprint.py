"""Start each given `tunewright` binary as `serve` on a fresh data directory (loopback), several
times, and print, side by side and measured in this one run: the time from exec until /ready
answers 200 (median), the resident memory after it has been idle for a few seconds (median),
and how many libtorch/CUDA libraries are mapped into the process.

Usage: service_footprint.py [--runs N] [--idle-secs S] BINARY [BINARY ...]
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request

TORCH_LIBS = ("libtorch", "libc10", "libcuda", "libcudnn", "libcublas", "libnccl", "libgomp")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=0.5) as r:
            return r.status == 200
    except OSError:
        return False


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def torch_libs(pid):
    libs = set()
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            name = os.path.basename(path)
            if name.startswith(TORCH_LIBS):
                libs.add(name)
    return sorted(libs)


def one_run(binary, idle_secs):
    data = tempfile.mkdtemp(prefix="tw-footprint-")
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        [binary, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not ready(port):
            if proc.poll() is not None:
                raise SystemExit(f"{binary} exited with {proc.returncode} before it was ready")
            if time.monotonic() - started > 60:
                raise SystemExit(f"{binary} was not ready within 60 s")
            time.sleep(0.005)
        start_ms = (time.monotonic() - started) * 1000
        time.sleep(idle_secs)
        return start_ms, rss_kib(proc.pid), torch_libs(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--idle-secs", type=float, default=5.0)
    ap.add_argument("binaries", nargs="+")
    args = ap.parse_args()
    rows = []
    for binary in args.binaries:
        runs = [one_run(binary, args.idle_secs) for _ in range(args.runs)]
        rows.append(
            (
                binary,
                statistics.median(r[0] for r in runs),
                statistics.median(r[1] for r in runs) / 1024,
                runs[-1][2],
            )
        )
    print(f"{'binary':<40} {'start to /ready':>16} {'idle RSS':>10}  torch/CUDA libraries mapped")
    for binary, start_ms, rss_mib, libs in rows:
        mapped = f"{len(libs)} ({', '.join(libs)})" if libs else "0"
        print(f"{binary:<40} {start_ms:>13.1f} ms {rss_mib:>6.1f} MiB  {mapped}")
    print(f"(median of {args.runs} starts each; RSS read after {args.idle_secs:g} s idle)")


if __name__ == "__main__":
    main()
