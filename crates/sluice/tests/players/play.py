#!/usr/bin/python3
"""Plays one HLS URL with a non-browser client and reports how it goes.

Usage (Debian's /usr/bin/python3: the GStreamer client needs PyGObject):

    /usr/bin/python3 play.py CLIENT URL MAX_SECONDS

CLIENT is one of:
  gstreamer  playbin3 (hlsdemux2) through the Python bindings, video into a fakesink that
             syncs to the clock, as a player would; buffering messages are ignored, as a live
             player must.
  ffmpeg     `ffmpeg -re -i URL -vf showinfo -f null -`: paced like ffplay/mpv, every decoded
             frame logged with its size.
  vlc        `cvlc` (Debian's VLC) writing every displayed picture as YUV4MPEG2 into a FIFO
             this script reads; a picture identical to the one before (VLC shows the last
             one again while it waits) is not counted. VLC refuses to run as root, so as
             root it runs as `nobody` through `runuser`.

URL may also be a stream's start URL (`.../api/streams/NAME/hls`): the script POSTs it and
plays the playlist it returns, so times count from the stream's first request (cold start).

Output: one JSON object per line on stdout, every 250 ms and once more at the end (with
"done": true), the same shape as browser.mjs reports:
  {"t": seconds since start, "frames": video frames decoded so far, "position": the latest
   frame's media time in seconds (GStreamer, ffmpeg; null for VLC, whose YUV output carries
   none), "width", "height": the latest picture's size, "firstFrame": when the first
   picture was decoded (seconds, same clock as "t"; null before), "fatal": [fatal errors],
   "errors": [other errors]}
The run ends after MAX_SECONDS or as soon as stdin closes (how the tests stop it). A client
that ends by itself before that (an error, or end of stream on a live playlist) is fatal.
"""

import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib

START = time.monotonic()


class Report:
    """What the client has done so far; the printing loop reads it under the lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.frames = 0
        self.position = None
        self.first_frame = None
        self.width = 0
        self.height = 0
        self.fatal = []
        self.errors = []

    def frame(self, width, height, position=None):
        with self.lock:
            self.frames += 1
            self.position = position
            if self.first_frame is None:
                self.first_frame = time.monotonic() - START
            self.width, self.height = width, height

    def error(self, message, fatal=False):
        with self.lock:
            errors = self.fatal if fatal else self.errors
            if message not in errors:
                errors.append(message)

    def line(self, **extra):
        with self.lock:
            d = {"t": time.monotonic() - START, "frames": self.frames,
                 "position": self.position, "width": self.width,
                 "height": self.height, "firstFrame": self.first_frame,
                 "fatal": list(self.fatal), "errors": list(self.errors)}
        d.update(extra)
        sys.stdout.write(json.dumps(d) + "\n")
        sys.stdout.flush()


def playlist_url(url):
    """The playlist to play: `url` itself, or what POSTing a stream's start URL returns."""
    if not re.search(r"/api/streams/[^/]+/hls$", url):
        return url
    req = urllib.request.Request(url, method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=60) as r:
        path = json.load(r)["url"]
    return re.match(r"https?://[^/]+", url).group(0) + path


def run_until_stopped(report, max_seconds, ended):
    """Prints a report line every 250 ms until stdin closes, `max_seconds` pass or the client
    ends by itself (`ended` set)."""
    deadline = START + max_seconds
    while time.monotonic() < deadline and not ended.is_set():
        report.line()
        readable, _, _ = select.select([sys.stdin], [], [], 0.25)
        if readable and not os.read(sys.stdin.fileno(), 4096):
            return


def gstreamer(url, report, max_seconds):
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import GLib, Gst

    Gst.init(None)
    playbin = Gst.ElementFactory.make("playbin3")
    playbin.set_property("uri", url)
    sink = Gst.ElementFactory.make("fakesink")
    sink.set_property("sync", True)
    sink.set_property("signal-handoffs", True)

    def handoff(_sink, buffer, pad):
        s = pad.get_current_caps().get_structure(0)
        pts = buffer.pts / Gst.SECOND if buffer.pts != Gst.CLOCK_TIME_NONE else None
        report.frame(s.get_int("width")[1], s.get_int("height")[1], pts)

    sink.connect("handoff", handoff)
    playbin.set_property("video-sink", sink)
    playbin.set_property("audio-sink", Gst.ElementFactory.make("fakesink"))
    ended = threading.Event()

    def on_message(_bus, m):
        if m.type == Gst.MessageType.ERROR:
            err, debug = m.parse_error()
            report.error(f"{err.message} ({debug})", fatal=True)
            ended.set()
        elif m.type == Gst.MessageType.EOS:
            report.error("end of stream on a live playlist", fatal=True)
            ended.set()
        elif m.type == Gst.MessageType.WARNING:
            report.error(m.parse_warning()[0].message)

    bus = playbin.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    loop = GLib.MainLoop()
    threading.Thread(target=loop.run, daemon=True).start()
    playbin.set_state(Gst.State.PLAYING)
    run_until_stopped(report, max_seconds, ended)
    report.line(done=True)
    # set_state(NULL) can block for seconds inside hlsdemux2 while a download is pending; the
    # process ending releases everything.
    os._exit(0)


def ffmpeg(url, report, max_seconds):
    proc = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+info",
         "-re", "-i", url, "-map", "0:v:0", "-vf", "showinfo", "-f", "null", "-"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        errors="replace")
    ended = threading.Event()
    size = re.compile(r"\bs:(\d+)x(\d+)\b")
    pts = re.compile(r"\bpts_time:\s*(-?[0-9.]+)")

    def read():
        for line in proc.stderr:
            if "Parsed_showinfo" in line and " n:" in line:
                m = size.search(line)
                t = pts.search(line)
                if m:
                    report.frame(int(m.group(1)), int(m.group(2)),
                                 float(t.group(1)) if t else None)
            elif "[fatal]" in line or "[error]" in line:
                # "[h264 @ 0x55f9...] [error] ...": without the address, a repeat is one error.
                message = re.sub(r" @ 0x[0-9a-f]+", "", line.strip())
                report.error(message, fatal="[fatal]" in line)
        code = proc.wait()
        if not stopping.is_set():
            report.error(f"ffmpeg ended by itself (exit status {code})", fatal=True)
        ended.set()

    stopping = threading.Event()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    run_until_stopped(report, max_seconds, ended)
    stopping.set()
    proc.terminate()
    reader.join(10)
    report.line(done=True)


# VLC's errors that are not about the stream: no D-Bus or hotkeys in a headless session, and the
# video converter chain it tries (and drops) before settling on the YUV output's format.
VLC_NOISE = re.compile(
    r"interface|video converter|recursion|adapt decoder format|video output creation failed"
    r"|failed to create video output")


def vlc(url, report, max_seconds):
    work = tempfile.mkdtemp(prefix="sluice-vlc-")
    fifo = os.path.join(work, "out.y4m")
    os.mkfifo(fifo)
    command = ["cvlc", "-I", "dummy", "--no-audio", "--vout=yuv", f"--yuv-file={fifo}",
               "--yuv-chroma=I420", "--yuv-yuv4mpeg2", "--aout=adummy", "--no-dbus",
               "--avcodec-hw=none", url]
    env = dict(os.environ)
    if os.geteuid() == 0:
        # VLC refuses to run as root (and the FIFO must be writable by its user).
        os.chmod(work, 0o755)
        os.chmod(fifo, 0o666)
        command = ["runuser", "-u", "nobody", "--"] + command
        env["HOME"] = work
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env, text=True, errors="replace")
    ended = threading.Event()
    stopping = threading.Event()

    def read_pictures():
        # VLC opens the file when its video output starts and again when the picture size
        # changes (a new output): each opening starts with a YUV4MPEG2 header.
        while not stopping.is_set():
            with open(fifo, "rb") as f:
                header = f.readline().split()
                if not header:
                    continue
                fields = {h[:1]: h[1:] for h in header[1:]}
                width, height = int(fields[b"W"]), int(fields[b"H"])
                picture = width * height * 3 // 2
                previous = None
                while f.readline().startswith(b"FRAME"):
                    data = f.read(picture)
                    if len(data) < picture:
                        break
                    # While it waits for data VLC shows the last picture again: only a picture
                    # that differs from the one before is a newly decoded frame.
                    crc = zlib.crc32(data)
                    if crc != previous:
                        report.frame(width, height)
                    previous = crc

    def read_log():
        for line in proc.stderr:
            # "[0000559a1c2d3e40] mp4 stream error: no moov before mdat ...": the object's
            # address is dropped so a repeated error is reported once.
            message = line.strip().split("] ", 1)[-1]
            if " error:" in message and not VLC_NOISE.search(message):
                report.error(message)
        code = proc.wait()
        if not stopping.is_set():
            report.error(f"vlc ended by itself (exit status {code})", fatal=True)
        ended.set()

    threading.Thread(target=read_pictures, daemon=True).start()
    log = threading.Thread(target=read_log, daemon=True)
    log.start()
    run_until_stopped(report, max_seconds, ended)
    stopping.set()
    proc.terminate()
    log.join(10)
    report.line(done=True)
    shutil.rmtree(work, ignore_errors=True)
    # The picture reader may still be blocked opening the FIFO.
    os._exit(0)


CLIENTS = {"gstreamer": gstreamer, "ffmpeg": ffmpeg, "vlc": vlc}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in CLIENTS:
        sys.exit("usage: play.py gstreamer|ffmpeg|vlc URL MAX_SECONDS")
    client, url, max_seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    report = Report()
    try:
        url = playlist_url(url)
    except Exception as e:  # noqa: BLE001 - reported, not raised: the caller reads JSON
        report.error(f"starting the stream: {e}", fatal=True)
        report.line(done=True)
        return
    CLIENTS[client](url, report, max_seconds)


if __name__ == "__main__":
    main()
