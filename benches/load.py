#!/usr/bin/env python3
"""Load harness: N cameras x M viewers for D seconds, Sluice side by side with its peers.

Runs, at normal priority and in the same window, as separate processes:

- `rtsp-sim` (crates/bench): N RTSP cameras from one process replaying one pre-encoded clip
  (made with ffmpeg/libx264 and cached) with real pacing;
- `sluice serve` (release build) with one preloaded stream per camera;
- one `ffmpeg -rtsp_transport tcp -i rtsp://... -c copy -f hls -hls_segment_type fmp4` per
  camera, writing into a tmpfs directory: the remux Sluice replaces;
- `retina-reader` (crates/bench): retina reading the N cameras and nothing else, the floor of
  Sluice's RTSP stack;
- `hls-viewers` (crates/bench), when M > 0: M LL-HLS viewers per stream following the playlist
  with blocking reloads and fetching every part.

After --warm-up seconds it samples every process's CPU time (utime+stime from /proc/PID/stat),
RSS and PSS, and context switches (voluntary + involuntary, summed over its threads), again at
the end of the --duration window, and prints per-camera figures, the ratios Sluice/ffmpeg and
Sluice/retina, the viewers' latencies, stalls and errors, and the load the rest of the machine
put on it meanwhile. Results also go to --json.

Usage (from anywhere; stdlib only; needs ffmpeg and cargo):
    benches/load.py [--cameras 8] [--viewers 1] [--duration 60] [--warm-up 15]
                    [--clip 240p|1080p|FILE.mp4] [--width W --height H --bitrate KBPS --fps F]
                    [--gop SECS] [--no-audio] [--peers sluice,ffmpeg,retina] [--on-demand]
                    [--json load.json] [--bin-dir DIR] [--no-build]
    benches/load.py --validate      # ffprobe decodes the simulator's RTSP and Sluice's HLS of it
"""

import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
CLIPS = {
    "240p": dict(width=320, height=240, bitrate=1000),
    "1080p": dict(width=1920, height=1080, bitrate=4000),
}
PEERS = ("sluice", "ffmpeg", "retina")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cameras", type=int, default=8)
    p.add_argument("--viewers", type=int, default=0, help="LL-HLS viewers per camera")
    p.add_argument("--duration", type=float, default=60, help="measured seconds")
    p.add_argument("--warm-up", type=float, default=15, help="seconds before measuring")
    p.add_argument("--clip", default="240p",
                   help="240p (320x240 1 Mbit/s), 1080p (4 Mbit/s), or an MP4 file")
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--bitrate", type=int, help="video kbit/s")
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--gop", type=float, default=1.0, help="seconds between keyframes")
    p.add_argument("--clip-seconds", type=int, default=8,
                   help="loop length (8 s holds whole GOPs and whole 16 kHz AAC frames)")
    p.add_argument("--no-audio", action="store_true", help="video only (default: AAC too)")
    p.add_argument("--peers", default=",".join(PEERS),
                   help="which of sluice,ffmpeg,retina to run (comma-separated)")
    p.add_argument("--on-demand", action="store_true",
                   help="streams not preloaded: the viewers start them")
    p.add_argument("--sim-threads", type=int, default=1, help="rtsp-sim runtime threads")
    p.add_argument("--packet-writes", action="store_true",
                   help="rtsp-sim writes each RTP packet on its own (default: one write per "
                   "access unit)")
    p.add_argument("--sim-nice", type=int, default=0,
                   help="rtsp-sim's nice value (negative: a steadier camera on a busy machine)")
    p.add_argument("--viewer-threads", type=int, default=1, help="hls-viewers runtime threads")
    p.add_argument("--json", default="load.json", help="where to write the results")
    p.add_argument("--bin-dir", help="directory with sluice, rtsp-sim, hls-viewers, "
                   "retina-reader (default: cargo build --release)")
    p.add_argument("--no-build", action="store_true", help="use --bin-dir/target as it is")
    p.add_argument("--validate", action="store_true",
                   help="check the simulator's output with ffprobe and through Sluice, then exit")
    a = p.parse_args()
    a.peers = [x for x in a.peers.split(",") if x]
    unknown = set(a.peers) - set(PEERS)
    if unknown:
        p.error(f"unknown peers: {', '.join(sorted(unknown))}")
    if a.viewers and "sluice" not in a.peers:
        p.error("viewers need sluice in --peers")
    return a


def die_with_parent():
    """Child processes get SIGKILL if the driver dies, so nothing outlives it."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def binaries(args):
    if args.bin_dir:
        d = args.bin_dir
    else:
        d = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                         "release")
        if not args.no_build:
            subprocess.run(["nice", "-n", "10", "cargo", "build", "-q", "--release",
                            "-p", "sluice", "-p", "sluice-bench"], cwd=ROOT, check=True)
    paths = {n: os.path.join(d, n) for n in ("sluice", "rtsp-sim", "hls-viewers",
                                             "retina-reader")}
    for n, path in paths.items():
        if not os.access(path, os.X_OK):
            sys.exit(f"load.py: {path} missing (build it, or give --bin-dir)")
    return paths


def make_clip(args):
    """The clip the cameras replay: a given file, or one made (and cached) with libx264."""
    if args.clip.endswith(".mp4"):
        return os.path.abspath(args.clip)
    if args.clip not in CLIPS:
        sys.exit(f"load.py: --clip is 240p, 1080p or an .mp4 file, not {args.clip!r}")
    spec = dict(CLIPS[args.clip])
    for k in ("width", "height", "bitrate"):
        if getattr(args, k):
            spec[k] = getattr(args, k)
    w, h, kbps, fps = spec["width"], spec["height"], spec["bitrate"], args.fps
    gop = max(1, round(args.gop * fps))
    audio = not args.no_audio
    cache = os.path.join(tempfile.gettempdir(), "sluice-load")
    os.makedirs(cache, exist_ok=True)
    name = f"{w}x{h}_{fps}fps_{kbps}k_g{gop}_{args.clip_seconds}s{'_aac' if audio else ''}.mp4"
    path = os.path.join(cache, name)
    if os.path.getsize(path) if os.path.exists(path) else 0:
        return path
    cmd = ["nice", "-n", "10", "ffmpeg", "-v", "error", "-y",
           "-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate={fps}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000"]
    cmd += ["-t", str(args.clip_seconds), "-c:v", "libx264", "-preset", "veryfast",
            "-profile:v", "main", "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k",
            "-bufsize", f"{kbps}k", "-g", str(gop), "-keyint_min", str(gop),
            "-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p"]
    cmd += ["-c:a", "aac", "-b:a", "32k", "-ac", "1"] if audio else ["-an"]
    cmd += ["-movflags", "+faststart", path + ".tmp.mp4"]
    subprocess.run(cmd, check=True)
    os.replace(path + ".tmp.mp4", path)
    return path


class Procs:
    """Every process started, stopped in reverse order at the end."""

    def __init__(self):
        self.procs = []

    def start(self, name, cmd, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(cmd, preexec_fn=die_with_parent, **kw)
        self.procs.append((name, p))
        return p

    def stop(self, p, timeout=10):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for _, p in reversed(self.procs):
            self.stop(p)


def read_line(proc, prefix, what, timeout=30):
    """The first stdout line of `proc` containing `prefix` (the rest is drained in a thread)."""
    result = {}

    def reader():
        for line in proc.stdout:
            if prefix in line:
                result["line"] = line.strip()
                break
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(timeout)
    if "line" not in result:
        raise RuntimeError(f"{what} did not start (no {prefix!r} on stdout)")
    return result["line"]


def start_sim(procs, bins, clip, cameras, work, threads, nice=0, packet_writes=False):
    p = procs.start("rtsp-sim", ["nice", "-n", str(nice),
                                 bins["rtsp-sim"], "--clip", clip, "--cameras", str(cameras),
                                 "--threads", str(threads)]
                    + (["--packet-writes"] if packet_writes else []),
                    stdout=subprocess.PIPE, stderr=open(os.path.join(work, "sim.log"), "w"),
                    text=True)
    base = read_line(p, "READY ", "rtsp-sim").split()[1]
    return p, base


def start_sluice(procs, bins, base, cameras, work, preload=True):
    streams = "".join(
        f'  cam{i}: {{ source: "{base}cam{i}", transport: tcp, preload: {str(preload).lower()} }}\n'
        for i in range(cameras))
    config = os.path.join(work, "sluice.yaml")
    with open(config, "w") as f:
        f.write(f"streams:\n{streams}" if cameras else "streams: {}\n")
    p = procs.start("sluice", [bins["sluice"], "serve", "--config", config,
                               "--listen", "127.0.0.1:0"],
                    stdout=subprocess.PIPE, stderr=open(os.path.join(work, "sluice.log"), "a"),
                    text=True, env={**os.environ, "RUST_LOG": "warn"})
    line = read_line(p, "Web UI: ", "sluice")
    addr = re.search(r"http://([^/]+)/", line).group(1)
    return p, addr


def proc_sample(pid):
    """CPU seconds, RSS and PSS (KiB), context switches (all threads) of one process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        rss = pss = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss = int(line.split()[1])
        except OSError:
            pass
        ctx = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches",
                                            "nonvoluntary_ctxt_switches")):
                            ctx += int(line.split()[1])
            except OSError:
                pass  # a thread that just ended
        return {"cpu": cpu, "rss": rss, "pss": pss, "ctx": ctx}
    except (OSError, IndexError, ValueError):
        return None


def machine_sample():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    with open("/proc/loadavg") as f:
        load = float(f.read().split()[0])
    return {"busy": (sum(v[:8]) - idle) / CLK_TCK, "load": load}


def metrics(addr):
    try:
        with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {"frames": 0.0, "release": {}, "responses": {}}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, value = line.rsplit(" ", 1)
        value = float(value)
        if name.startswith("sluice_stream_frames_total"):
            out["frames"] += value
        elif name.startswith("sluice_hls_blocking_release_seconds_bucket"):
            le = re.search(r'le="([^"]+)"', name).group(1)
            out["release"][le] = out["release"].get(le, 0) + value
        elif name.startswith("sluice_http_responses_total"):
            code = re.search(r'(?:status|code)="(\d+)"', name)
            if code:
                out["responses"][code.group(1)] = out["responses"].get(code.group(1), 0) + value
    return out


def histogram_quantiles(start, end):
    """p50/p99 upper bounds (ms) of the blocking releases counted between two scrapes."""
    if not end.get("release"):
        return None
    bounds = sorted((float("inf") if k == "+Inf" else float(k), k) for k in end["release"])
    counts = [(b, end["release"][k] - start.get("release", {}).get(k, 0)) for b, k in bounds]
    total = counts[-1][1] if counts else 0
    if total <= 0:
        return {"count": 0}
    q = {}
    for name, p in (("p50", 0.5), ("p99", 0.99)):
        b = next(b for b, c in counts if c >= p * total)
        q[name] = "inf" if b == float("inf") else round(b * 1000, 3)
    q["count"] = int(total)
    return q


def validate(args, bins, work):
    """ffprobe decodes the simulator's RTSP, and Sluice's LL-HLS made from it."""
    procs = Procs()
    ok = True
    try:
        clip = make_clip(args)
        _, base = start_sim(procs, bins, clip, 1, work, 1)
        url = base + "cam0"
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-count_frames",
             "-read_intervals", "%+12", "-show_entries", "stream=codec_name,width,height,"
             "nb_read_frames", "-of", "compact", url],
            capture_output=True, text=True, timeout=60)
        print(f"ffprobe {url}:\n{probe.stdout.strip()}")
        if probe.returncode or probe.stderr.strip():
            print(f"FAILED: ffprobe errors:\n{probe.stderr}")
            ok = False
        _, addr = start_sluice(procs, bins, base, 1, work)
        with urllib.request.urlopen(urllib.request.Request(
                f"http://{addr}/api/streams/cam0/hls", method="POST"), timeout=30) as r:
            hls = f"http://{addr}" + json.loads(r.read())["url"]
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-count_frames", "-read_intervals", "%+5",
             "-show_entries", "stream=codec_name,width,height,nb_read_frames",
             "-of", "compact", hls], capture_output=True, text=True, timeout=90)
        print(f"ffprobe (Sluice's LL-HLS of it) {hls}:\n{probe.stdout.strip()}")
        if probe.returncode or probe.stderr.strip():
            print(f"FAILED: ffprobe errors:\n{probe.stderr}")
            ok = False
        frames = [int(m) for m in re.findall(r"nb_read_frames=(\d+)", probe.stdout)]
        if not frames or frames[0] == 0:
            print("FAILED: no frames decoded from Sluice")
            ok = False
    finally:
        procs.stop_all()
    print("valid" if ok else "INVALID")
    return 0 if ok else 1


def per_cam(v, n):
    return v / n if n else 0


def run(args, bins, work):
    procs = Procs()
    n, m = args.cameras, args.viewers
    shm = tempfile.mkdtemp(prefix="sluice-load-", dir="/dev/shm" if os.path.isdir("/dev/shm")
                           else None)
    try:
        clip = make_clip(args)
        clip_info = json.loads(subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries",
             "stream=codec_type,codec_name,width,height,bit_rate,avg_frame_rate,sample_rate",
             "-of", "json", clip], capture_output=True, text=True, check=True).stdout)
        idle_rss = None
        if "sluice" in args.peers:
            # Sluice's RSS with no stream, to separate its per-camera memory from its base.
            p, _ = start_sluice(procs, bins, "rtsp://127.0.0.1:9/", 0, work)
            time.sleep(1)
            s = proc_sample(p.pid)
            idle_rss = s and s["rss"]
            procs.stop(p)
        sim, base = start_sim(procs, bins, clip, n, work, args.sim_threads, args.sim_nice,
                               args.packet_writes)
        measured = {"rtsp-sim": [sim]}
        total = args.warm_up + args.duration
        # One window for every process: the driver samples /proc at its edges, the reader and
        # the viewers count what happens inside it and keep going for a while after it.
        started = time.monotonic()
        window_args = ["--window-start", f"{time.time() + args.warm_up:.3f}",
                  "--duration", str(args.duration), "--linger", "5"]
        addr = None
        if "sluice" in args.peers:
            sl, addr = start_sluice(procs, bins, base, n, work, preload=not args.on_demand)
            measured["sluice"] = [sl]
        if "ffmpeg" in args.peers:
            measured["ffmpeg"] = []
            for i in range(n):
                flog = open(os.path.join(work, f"ffmpeg{i}.log"), "w")
                out = os.path.join(shm, f"cam{i}")
                os.makedirs(out)
                measured["ffmpeg"].append(procs.start(f"ffmpeg{i}", [
                    "ffmpeg", "-nostdin", "-v", "warning", "-rtsp_transport", "tcp",
                    "-i", f"{base}cam{i}", "-c", "copy", "-f", "hls",
                    "-hls_segment_type", "fmp4", "-hls_time", "1", "-hls_list_size", "7",
                    "-hls_flags", "delete_segments", "-hls_fmp4_init_filename", "init.mp4",
                    os.path.join(out, "p.m3u8")], stdout=subprocess.DEVNULL, stderr=flog))
        outputs = {}
        if "retina" in args.peers:
            rr = procs.start("retina-reader", [
                bins["retina-reader"], "--base", base, "--cameras", str(n), *window_args],
                stdout=subprocess.PIPE, stderr=open(os.path.join(work, "retina.log"), "w"),
                text=True)
            measured["retina-reader"] = [rr]
        if m:
            hv = procs.start("hls-viewers", [
                bins["hls-viewers"], "--server", addr,
                "--streams", ",".join(f"cam{i}" for i in range(n)), "--per-stream", str(m),
                *window_args,
                "--spread", str(min(5.0, args.warm_up / 3)),
                "--threads", str(args.viewer_threads)],
                stdout=subprocess.PIPE, stderr=open(os.path.join(work, "viewers.log"), "w"),
                text=True)
            measured["hls-viewers"] = [hv]
        time.sleep(max(0.0, started + args.warm_up - time.monotonic()))

        def sample_all():
            return {k: [proc_sample(p.pid) for p in ps] for k, ps in measured.items()}
        window_began = time.monotonic()
        first, m0, mach0 = sample_all(), addr and metrics(addr), machine_sample()
        peak = {k: sum((s or {}).get("rss", 0) for s in v) for k, v in first.items()}
        while time.monotonic() < started + total:
            time.sleep(min(1.0, max(0.0, started + total - time.monotonic())))
            for k, v in sample_all().items():
                peak[k] = max(peak[k], sum((s or {}).get("rss", 0) for s in v))
        last, m1, mach1 = sample_all(), addr and metrics(addr), machine_sample()
        window = time.monotonic() - window_began
        for name in ("retina-reader", "hls-viewers"):
            if name in measured:
                p = measured[name][0]
                try:
                    out, _ = p.communicate(timeout=40)
                    outputs[name] = json.loads(out.strip().splitlines()[-1])
                except (subprocess.TimeoutExpired, ValueError, IndexError):
                    outputs[name] = None
        # A server, camera or ffmpeg that ended before the window did (the reader and the
        # viewers end on their own, after it).
        dead = [f"{k}#{i} (exit {p.returncode})" for k, ps in measured.items()
                for i, p in enumerate(ps)
                if p.poll() is not None and k not in ("retina-reader", "hls-viewers")]
        procs.stop(sim)
        try:
            outputs["rtsp-sim"] = json.loads(sim.stdout.read().strip().splitlines()[-1])
        except (ValueError, IndexError):
            outputs["rtsp-sim"] = None
    finally:
        procs.stop_all()
        shutil.rmtree(shm, ignore_errors=True)

    sim_info = outputs.get("rtsp-sim") or {}
    fps = (sim_info.get("clip") or {}).get("video_fps", args.fps)
    aus = (sim_info.get("clip") or {}).get("frames_per_sec", fps)
    rows = {}
    for k in measured:
        a, b = first[k], last[k]
        pairs = [(x, y) for x, y in zip(a, b) if x and y]
        cpu = sum(y["cpu"] - x["cpu"] for x, y in pairs)
        ctx = sum(y["ctx"] - x["ctx"] for x, y in pairs)
        rss = sum(y["rss"] for _, y in pairs)
        pss = sum(y["pss"] for _, y in pairs)
        rows[k] = {"processes": len(measured[k]), "cpu_s": round(cpu, 3),
                   "millicores_per_camera": round(per_cam(cpu / window * 1000, n), 2),
                   "rss_mb": round(rss / 1024, 1), "pss_mb": round(pss / 1024, 1),
                   "peak_rss_mb": round(peak[k] / 1024, 1),
                   "rss_mb_per_camera": round(per_cam(rss / 1024, n), 2),
                   "mb_per_camera": round(per_cam(pss / 1024, n), 2),
                   "ctxsw_per_s_per_camera": round(per_cam(ctx / window, n), 1),
                   "ctxsw_per_video_frame": round(per_cam(ctx / window, n) / fps, 2)}
    if "sluice" in rows and idle_rss:
        r = rows["sluice"]
        r["idle_rss_mb"] = round(idle_rss / 1024, 1)
        r["mb_per_camera"] = round(per_cam(r["rss_mb"] - idle_rss / 1024, n), 2)
        frames = (m1 or {}).get("frames", 0) - (m0 or {}).get("frames", 0)
        r["frames_in_per_s_per_camera"] = round(per_cam(frames / window, n), 2)
    ratios = {}
    if "sluice" in rows:
        s = rows["sluice"]
        for peer, key in (("ffmpeg", "ffmpeg"), ("retina", "retina-reader")):
            if key in rows and rows[key]["cpu_s"] > 0:
                ratios[f"cpu_sluice_over_{peer}"] = round(s["cpu_s"] / rows[key]["cpu_s"], 2)
        # Memory: Sluice's per-camera growth against a whole ffmpeg process (PSS: its shared
        # libraries split among the ffmpeg processes).
        if "ffmpeg" in rows and rows["ffmpeg"]["mb_per_camera"] > 0:
            ratios["mb_per_camera_sluice_over_ffmpeg"] = round(
                s["mb_per_camera"] / rows["ffmpeg"]["mb_per_camera"], 3)
    ours = sum(r["cpu_s"] for r in rows.values())
    busy = mach1["busy"] - mach0["busy"]
    result = {
        "cameras": n, "viewers_per_camera": m, "window_s": window, "warm_up_s": args.warm_up,
        "clip": {"file": os.path.basename(clip), **(sim_info.get("clip") or {}),
                 "streams": clip_info.get("streams")},
        "machine": {"cores": os.cpu_count(), "load_start": mach0["load"],
                    "load_end": mach1["load"], "busy_cores": round(busy / window, 2),
                    "harness_cores": round(ours / window, 2),
                    "other_cores": round((busy - ours) / window, 2)},
        "processes": rows, "ratios": ratios,
        "sluice_blocking_release_ms": m1 and histogram_quantiles(m0 or {}, m1),
        "sluice_http_responses": m1 and {
            k: int(v - (m0 or {}).get("responses", {}).get(k, 0))
            for k, v in m1.get("responses", {}).items()},
        "viewers": outputs.get("hls-viewers"),
        "retina_reader": outputs.get("retina-reader"),
        "rtsp_sim": sim_info,
        "exited_early": dead,
        "access_units_per_s_per_camera": aus,
    }
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    report(result)
    print(f"\nJSON: {args.json}; logs: {work}")
    return 0 if not dead else 1


def report(r):
    c = r["clip"]
    mach = r["machine"]
    print(f"\n{r['cameras']} cameras x {r['viewers_per_camera']} viewers, "
          f"{r['window_s']:.0f} s measured after {r['warm_up_s']:.0f} s warm-up; clip "
          f"{c.get('width')}x{c.get('height')} {c.get('video_fps', 0):.0f} fps "
          f"{(c.get('bitrate') or 0) / 1000:.0f} kbit/s{' + AAC' if c.get('audio') else ''}")
    print(f"machine: {mach['cores']} cores, load {mach['load_start']:.2f} -> "
          f"{mach['load_end']:.2f}; busy {mach['busy_cores']:.2f} cores, of which harness "
          f"{mach['harness_cores']:.2f}, other processes {mach['other_cores']:.2f}")
    print(f"\n{'process':14}{'procs':>6}{'CPU s':>8}{'mcores/cam':>11}{'RSS MB':>8}"
          f"{'PSS MB':>8}{'RSS/cam':>8}{'MB/cam':>8}{'ctxsw/s/cam':>12}{'ctxsw/frame':>12}")
    for k, v in r["processes"].items():
        print(f"{k:14}{v['processes']:>6}{v['cpu_s']:>8.2f}{v['millicores_per_camera']:>11.2f}"
              f"{v['rss_mb']:>8.1f}{v['pss_mb']:>8.1f}{v['rss_mb_per_camera']:>8.2f}"
              f"{v['mb_per_camera']:>8.2f}{v['ctxsw_per_s_per_camera']:>12.1f}"
              f"{v['ctxsw_per_video_frame']:>12.2f}")
    s = r["processes"].get("sluice")
    if s and "idle_rss_mb" in s:
        print(f"(sluice MB/cam = (RSS - {s['idle_rss_mb']} MB idle) / cameras; others: PSS / "
              f"cameras; frames in: {s['frames_in_per_s_per_camera']}/s per camera)")
    if r["ratios"]:
        print("ratios: " + ", ".join(f"{k} {v}x" for k, v in r["ratios"].items()))
    v = r.get("viewers")
    if v:
        def pcts(d):
            return f"p50 {d.get('p50')} p99 {d.get('p99')} max {d.get('max')} ms"
        print(f"viewers: {v['viewers']}, parts {v['parts']}, stalls {v['stalls']}, errors "
              f"{v['errors']} {v['errors_by_kind'] or ''}, gaps {v['gaps']}")
        print(f"  frame sent -> part received: {pcts(v['part_latency_ms'])}")
        print(f"  frame sent -> blocking playlist answered: {pcts(v['playlist_latency_ms'])}")
        print(f"  vs PROGRAM-DATE-TIME: part {pcts(v['pdt_part_latency_ms'])} "
              f"({v['pdt_part_latency_negative']} negative)")
    rel = r.get("sluice_blocking_release_ms")
    if rel and rel.get("count"):
        print(f"sluice blocking release (its histogram, bucket bounds): p50 <= {rel['p50']} ms,"
              f" p99 <= {rel['p99']} ms over {rel['count']}")
    rr = r.get("retina_reader")
    if rr:
        d, t = rr["frame_delay_ms"], rr["frame_transit_ms"]
        print(f"retina-reader: {rr['video_fps_per_camera']:.2f} fps/camera, errors "
              f"{rr['errors']}; frame arrival delay vs RTP time p50 {d.get('p50')} p99 "
              f"{d.get('p99')} ms; transit from send p50 {t.get('p50')} p99 {t.get('p99')} ms")
    sim = r.get("rtsp_sim")
    if sim:
        lat = sim["send_lateness_ms"]
        print(f"rtsp-sim: {sim['sessions']} sessions, wakeup lateness p50 {lat['p50']} "
              f"p99 {lat['p99']} ms, errors {sim['errors']}, dropped {sim['dropped']}")
    if r["exited_early"]:
        print(f"EXITED EARLY: {', '.join(r['exited_early'])}")


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    bins = binaries(args)
    work = tempfile.mkdtemp(prefix="sluice-load-logs-")
    if args.validate:
        return validate(args, bins, work)
    return run(args, bins, work)


if __name__ == "__main__":
    sys.exit(main())
