#!/usr/bin/env python3
"""Soak test: N real RTSP cameras for D minutes with camera failures and viewer churn.

Starts N cameras (the GStreamer fixture, crates/sluice/tests/fixtures/rtsp_server.py, under
Debian's /usr/bin/python3), a release `sluice serve` with one stream per camera (half of them
preloaded, half started on demand), and then, until the time is up:

- camera failures: each camera, at random intervals (mean --fault-every seconds), is either
  killed and restarted on the same port after 1-8 s, or paused (SIGSTOP) for 2-8 s;
- viewer churn: --viewers players, each repeatedly picking a random stream, asking for its HLS
  URL, following the LL-HLS playlist (blocking reloads, then the hinted part) for 10-90 s, and
  leaving;
- every --interval seconds, a row of the server's RSS, open fds, threads (from /proc), alive
  async tasks (`sluice_runtime_alive_tasks` from /metrics), running streams, restarts and what
  the viewers got, appended to a CSV.

At the end it stops everything it started and prints, for RSS, fds, threads and tasks: the
first, last, lowest and highest sample and the least-squares slope per hour after the warm-up
and over the second half. A leak shows as a second-half slope that stays positive (run long
enough for restarts to repeat).

Usage (from anywhere; stdlib only):
    benches/soak.py [--cameras 10] [--minutes 30] [--viewers 20] [--fault-every 60]
                    [--interval 10] [--csv soak.csv] [--binary PATH] [--seed N]
    benches/soak.py --summarize soak.csv
"""

import argparse
import ctypes
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "crates/sluice/tests/fixtures/rtsp_server.py")
CAMERA_ARGS = ["--width", "320", "--height", "240", "--bitrate", "300"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cameras", type=int, default=10)
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--viewers", type=int, default=20, help="concurrent players")
    p.add_argument("--fault-every", type=float, default=60,
                   help="mean seconds between failures of one camera")
    p.add_argument("--interval", type=float, default=10, help="seconds between samples")
    p.add_argument("--warm-up", type=float, default=60,
                   help="seconds left out of the slopes")
    p.add_argument("--csv", default="soak.csv")
    p.add_argument("--binary", help="a sluice binary (default: cargo build --release)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--summarize", metavar="CSV",
                   help="print the summary of an earlier run's CSV and exit")
    return p.parse_args()


def die_with_parent():
    """Child processes get SIGKILL if the driver dies, so nothing outlives it."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Camera:
    """One fixture process; restarts keep its port."""

    def __init__(self, port=0):
        self.port = port
        self.proc = None
        self.start()

    def start(self):
        for _ in range(20):  # a port briefly taken by another socket: try again
            proc = subprocess.Popen(
                ["/usr/bin/python3", FIXTURE, "--port", str(self.port), *CAMERA_ARGS],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True, preexec_fn=die_with_parent)
            line = proc.stdout.readline()
            if line.startswith("READY "):
                self.proc, self.url = proc, line.split()[1]
                self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])
                return
            proc.kill()
            proc.wait()
            time.sleep(1)
        raise RuntimeError(f"camera on port {self.port} did not start")

    def kill(self):
        if self.proc:
            self.proc.kill()  # works on a stopped process too
            self.proc.wait()
            self.proc = None

    def signal(self, sig):
        if self.proc:
            self.proc.send_signal(sig)


def write_config(work, cameras):
    streams = "".join(
        f'  cam{i}: {{ source: "{c.url}", preload: {"true" if i % 2 == 0 else "false"}, '
        f"stall_timeout: 3, connect_timeout: 5 }}\n"
        for i, c in enumerate(cameras))
    path = os.path.join(work, "sluice.yaml")
    with open(path, "w") as f:
        f.write("hls: { segment_duration: 1.0, part_duration: 0.3, idle_timeout: 30 }\n"
                "ingest: { restart_increment: 1, restart_reset: 10 }\n"
                f"streams:\n{streams}")
    return path


def start_server(binary, config, work):
    log = open(os.path.join(work, "sluice.log"), "w")
    proc = subprocess.Popen(
        [binary, "serve", "--config", config, "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=log, text=True, env={**os.environ, "RUST_LOG": "warn"},
        preexec_fn=die_with_parent)
    for line in proc.stdout:
        if "Web UI: " in line:
            host, port = line.split("Web UI: ")[1].strip().split("//")[1].rstrip("/").split(":")
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, host, int(port)
    raise RuntimeError("sluice did not start; see " + log.name)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}

    def add(self, key):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def get(self, key):
        with self.lock:
            return self.counts.get(key, 0)


def request(conn, method, path):
    conn.request(method, path)
    r = conn.getresponse()
    return r.status, r.read()


def viewer(host, port, streams, stop, stats, rng):
    """Churns: watch a random stream for 10-90 s, leave, repeat."""
    while not stop.is_set():
        name = rng.choice(streams)
        until = time.monotonic() + rng.uniform(10, 90)
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            status, body = request(conn, "POST", f"/api/streams/{name}/hls")
            if status != 200:
                stats.add(f"error: POST hls {status}")
                continue
            base = json.loads(body)["url"].rsplit("/", 1)[0] + "/"
            stats.add("sessions")
            watch(conn, base, until, stop, stats)
        except (OSError, http.client.HTTPException, ValueError) as e:
            stats.add(f"error: {type(e).__name__}")
            time.sleep(1)
        finally:
            conn.close()


def watch(conn, base, until, stop, stats):
    request(conn, "GET", base + "master_playlist.m3u8")
    query = ""
    while time.monotonic() < until and not stop.is_set():
        status, body = request(conn, "GET", base + "playlist.m3u8" + query)
        if status == 503:  # the camera is away: no new part within the hold
            stats.add("playlist 503")
            time.sleep(1)
            continue
        if status == 404:  # the output went idle (a long outage): the URL is dead
            stats.add("expired")
            return
        if status != 200:
            stats.add(f"error: playlist {status}")
            return
        hint = next((l.split('URI="./')[1].rstrip('"') for l in body.decode().splitlines()
                     if l.startswith("#EXT-X-PRELOAD-HINT:")), None)
        if hint is None:
            stats.add("error: no preload hint")
            return
        status, _ = request(conn, "GET", base + hint)
        msn, part = hint[len("segment/"):-len(".m4s")].split(".")
        if status == 200:
            stats.add("parts")
            query = f"?_HLS_msn={msn}&_HLS_part={int(part) + 1}"
        elif status == 404:  # a hinted part the run ended before making
            stats.add("part 404")
            query = ""
        elif status == 503:  # not made in time (the camera is away): ask again
            stats.add("part 503")
            query = f"?_HLS_msn={msn}&_HLS_part={part}"
        else:
            stats.add(f"error: part {status}")
            return


def chaos(camera, stop, stats, rng, mean):
    """Fails one camera at random intervals: killed and restarted, or paused and resumed."""
    while not stop.wait(rng.expovariate(1 / mean)):
        if rng.random() < 0.5:
            camera.kill()
            stats.add("camera kills")
            if stop.wait(rng.uniform(1, 8)):
                return
            camera.start()
        else:
            camera.signal(signal.SIGSTOP)
            stats.add("camera pauses")
            stop.wait(rng.uniform(2, 8))
            camera.signal(signal.SIGCONT)


def metrics(host, port):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        _, body = request(conn, "GET", "/metrics")
    finally:
        conn.close()
    values = {}
    for line in body.decode().splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, value = line.rsplit(" ", 1)
        base = name.split("{")[0]
        if base == "sluice_stream_state" and 'state="running"' not in name:
            continue
        values[base] = values.get(base, 0) + float(value)
    return values


def proc_stats(pid):
    with open(f"/proc/{pid}/status") as f:
        field = dict(line.split(":", 1) for line in f if ":" in line)
    number = lambda name: int(field[name].split()[0])  # noqa: E731
    return number("VmRSS"), len(os.listdir(f"/proc/{pid}/fd")), number("Threads")


COLUMNS = ["time_s", "rss_kib", "fds", "threads", "tasks", "running_streams", "restarts",
           "watched_streams", "parts", "viewer_errors"]


def sample(pid, host, port, started, stats):
    rss, fds, threads = proc_stats(pid)
    m = metrics(host, port)
    with stats.lock:
        errors = sum(v for k, v in stats.counts.items() if k.startswith("error"))
    return [round(time.monotonic() - started), rss, fds, threads,
            int(m.get("sluice_runtime_alive_tasks", -1)), int(m.get("sluice_stream_state", 0)),
            int(m.get("sluice_stream_restarts_total", 0)), int(m.get("sluice_stream_viewers", 0)),
            stats.get("parts"), errors]


def slope_per_hour(points):
    if len(points) < 2:
        return float("nan")
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    return 3600 * sum((t - mx) * (v - my) for t, v in points) / var if var else float("nan")


def summary(rows, warm_up):
    """Per figure: first, last, min, max, and least-squares slopes per hour after the warm-up
    and over the second half (where a leak keeps climbing while warm-up growth has stopped)."""
    half = rows[-1][0] / 2
    print(f"\n{'':8} {'first':>8} {'last':>8} {'min':>8} {'max':>8} {'slope/h':>10} "
          f"{'2nd half':>10}")
    for col in ["rss_kib", "fds", "threads", "tasks"]:
        i = COLUMNS.index(col)
        values = [r[i] for r in rows]
        slope = slope_per_hour([(r[0], r[i]) for r in rows if r[0] >= warm_up])
        late = slope_per_hour([(r[0], r[i]) for r in rows if r[0] >= half])
        print(f"{col:8} {values[0]:>8} {values[-1]:>8} {min(values):>8} {max(values):>8} "
              f"{slope:>10.1f} {late:>10.1f}")


def main():
    args = parse_args()
    if args.summarize:
        with open(args.summarize) as f:
            rows = [[int(v) for v in line.split(",")] for line in list(f)[1:]]
        summary(rows, args.warm_up)
        return
    rng = random.Random(args.seed)
    binary = args.binary
    if not binary:
        subprocess.run(["cargo", "build", "-q", "--release", "-p", "sluice"], cwd=ROOT,
                       check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        binary = os.path.join(target, "release", "sluice")
    # SIGTERM/SIGINT unwind through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    work = tempfile.mkdtemp(prefix="sluice-soak-")
    stop = threading.Event()
    stats = Stats()
    cameras, threads, server = [], [], None
    try:
        cameras = [Camera() for _ in range(args.cameras)]
        server, host, port = start_server(binary, write_config(work, cameras), work)
        names = [f"cam{i}" for i in range(args.cameras)]
        for c in cameras:
            threads.append(threading.Thread(
                target=chaos, args=(c, stop, stats, random.Random(rng.random()),
                                    args.fault_every)))
        for _ in range(args.viewers):
            threads.append(threading.Thread(
                target=viewer, args=(host, port, names, stop, stats, random.Random(rng.random()))))
        for t in threads:
            t.daemon = True
            t.start()
        started = time.monotonic()
        end = started + args.minutes * 60
        rows = []
        with open(args.csv, "w") as out:
            out.write(",".join(COLUMNS) + "\n")
            while True:
                rows.append(sample(server.pid, host, port, started, stats))
                out.write(",".join(map(str, rows[-1])) + "\n")
                out.flush()
                print(" ".join(f"{c}={v}" for c, v in zip(COLUMNS, rows[-1])), flush=True)
                if time.monotonic() + args.interval > end or server.poll() is not None:
                    break
                time.sleep(args.interval)
        stop.set()
        if server.poll() is not None:
            print(f"sluice exited with {server.returncode}; see {work}/sluice.log")
        summary(rows, args.warm_up)
        print("\ncounts:", json.dumps(dict(sorted(stats.counts.items()))))
        print(f"CSV: {args.csv}; server log: {work}/sluice.log")
    finally:
        stop.set()
        for c in cameras:
            c.kill()
        if server and server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        for t in threads:
            t.join(timeout=35)


if __name__ == "__main__":
    main()
