#!/usr/bin/python3
"""Player benchmark: time to first frame, live latency and stalls, per HLS client.

Run through benches/players.sh (it builds the release binary). Needs what the player tests
need (scripts/test.sh installs it): Chromium, node with playwright-core, hls.js and
shaka-player, GStreamer with its Python bindings, ffmpeg and VLC.

    /usr/bin/python3 benches/players.py SLUICE_BINARY [STEADY_SECONDS]

One RTSP fixture camera (320x240, 25 fps, 1 s GOP, AAC) feeds one stream per client, none
preloaded. Each client, one at a time (so they measure the stream, not each other):
  1. starts its own cold stream (its request is the stream's first: the camera connection,
     the first keyframe and `hls.startup_segments` segments are all in the figure) and plays
     it for STEADY_SECONDS (60 by default) after its first frame;
  2. then opens the same stream again, now warm, until its first frame.
Printed per client: time to first frame cold and warm (from the first request to the first
decoded picture), decoded frames per second, stalls (a stretch of 0.5 s or more without a new
frame, after the first one) and the longest, and for hls.js and Shaka the live latency: wall
clock minus the EXT-X-PROGRAM-DATE-TIME of the playhead (median and 95th percentile), and the
browsers' `waiting` events.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAYERS = os.path.join(ROOT, "crates/sluice/tests/players")
FIXTURE = os.path.join(ROOT, "crates/sluice/tests/fixtures/rtsp_server.py")
CLIENTS = ["hls.js", "shaka", "native", "gstreamer", "ffmpeg", "vlc"]
BROWSERS = {"hls.js", "shaka", "native"}
STALL = 0.5


def ready_line(proc, pattern, what):
    """Reads `proc`'s stdout until a line matches `pattern`; returns the match."""
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        m = re.search(pattern, line)
        if m:
            return m
        if time.monotonic() > deadline:
            break
    sys.exit(f"{what} did not start")


def play(client, url, until):
    """Runs one client on `url`, feeding its reports to `until(report)` until that returns
    True; returns every report, the last one being the client's final report."""
    if client in BROWSERS:
        command = ["node", os.path.join(PLAYERS, "browser.mjs"), client, url, "600"]
    else:
        command = ["/usr/bin/python3", os.path.join(PLAYERS, "play.py"), client, url, "600"]
    proc = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    reports = []
    for line in proc.stdout:
        try:
            report = json.loads(line)
        except ValueError:
            continue
        reports.append(report)
        if report.get("fatal") or until(report):
            break
    proc.stdin.close()
    for line in proc.stdout:  # the final report
        try:
            reports.append(json.loads(line))
        except ValueError:
            pass
    proc.wait(timeout=60)
    return reports


def stalls(reports, first):
    """Stretches of STALL seconds or more without a new frame, after the first frame: their
    count and the longest."""
    count, longest, since, frames, counted = 0, 0.0, None, None, False
    for r in reports:
        if r["t"] < first:
            continue
        if frames is None or r["frames"] != frames:
            frames, since, counted = r["frames"], r["t"], False
            continue
        frozen = r["t"] - since
        longest = max(longest, frozen)
        if frozen >= STALL and not counted:
            count, counted = count + 1, True
    return count, longest


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))]


def measure(client, base, steady):
    start = f"{base}/api/streams/cold_{client.replace('.', '')}/hls"
    result = {"client": client}
    first = {}

    def steady_done(r):
        if r.get("firstFrame") is not None and "t" not in first:
            first["t"] = r["firstFrame"]
        return "t" in first and r["t"] >= first["t"] + steady

    reports = play(client, start, steady_done)
    last = reports[-1]
    if last.get("fatal") or last.get("firstFrame") is None:
        result["failure"] = (last.get("fatal") or ["no frame"])[0][:80]
        return result
    t0 = last["firstFrame"]
    result["cold"] = t0
    after = [r for r in reports if r["t"] >= t0]
    span = after[-1]["t"] - after[0]["t"]
    result["fps"] = (after[-1]["frames"] - after[0]["frames"]) / span if span > 0 else 0.0
    result["stalls"], result["longest"] = stalls(reports, t0)
    result["waiting"] = last.get("stalls")
    latencies = [r["pdtLatency"] for r in after if r.get("pdtLatency")]
    if latencies:
        result["latency"] = (statistics.median(latencies), percentile(latencies, 0.95))
    warm = play(client, start, lambda r: r.get("firstFrame") is not None)
    result["warm"] = warm[-1].get("firstFrame")
    return result


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    steady = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    camera = subprocess.Popen(["/usr/bin/python3", FIXTURE, "--gop", "25"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    work = tempfile.mkdtemp(prefix="sluice-players-bench-")
    server = None
    try:
        url = ready_line(camera, r"^READY (\S+)", "the RTSP fixture").group(1)
        config = os.path.join(work, "sluice.yaml")
        with open(config, "w") as f:
            f.write("streams:\n")
            for client in CLIENTS:
                name = client.replace(".", "")
                f.write(f'  cold_{name}: {{ source: "{url}", transport: tcp }}\n')
        server = subprocess.Popen(
            [binary, "serve", "--config", config, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=dict(os.environ, RUST_LOG="warn"))
        base = ready_line(server, r"Web UI: (http://[0-9.:]+)", "sluice").group(1)
        threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
        load = os.getloadavg()[0]
        print(f"{os.cpu_count()} CPUs, load average {load:.2f}; {steady:.0f} s of playback "
              "per client after its first frame; stall: >= 0.5 s without a new frame")
        print(f"{'client':<10} {'cold TTFF':>9} {'warm TTFF':>9} {'frames/s':>8} "
              f"{'stalls':>6} {'longest':>7} {'waiting':>7}  latency vs PDT (median / p95)")
        for client in CLIENTS:
            r = measure(client, base, steady)
            if "failure" in r:
                print(f"{client:<10} failed: {r['failure']}")
                continue
            latency = ("{:.2f} s / {:.2f} s".format(*r["latency"]) if "latency" in r else "-")
            warm = f"{r['warm']:.2f} s" if r.get("warm") is not None else "-"
            waiting = "-" if r["waiting"] is None else str(r["waiting"])
            print(f"{client:<10} {r['cold']:>7.2f} s {warm:>9} {r['fps']:>8.1f} "
                  f"{r['stalls']:>6} {r['longest']:>6.2f}s {waiting:>7}  {latency}",
                  flush=True)
    finally:
        for proc in (server, camera):
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()
