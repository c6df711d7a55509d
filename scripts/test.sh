#!/usr/bin/env bash
# Runs Sluice's whole test suite, installing the real peers the tests drive when missing:
# ffmpeg/ffprobe, GStreamer (the RTSP server and playbin3/hlsdemux2 as a player, with its
# Python bindings), Chromium and VLC (Debian packages), hls.js, Shaka Player and
# playwright-core (npm, pinned by package-lock.json), and the m3u8 playlist parser (PyPI).
# Safe to run repeatedly; installs nothing already present.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# Whether GStreamer has every element named (the camera fixture's encoders and payloaders, and
# the HLS player's demuxer and decoder).
gst_has() {
  command -v gst-inspect-1.0 >/dev/null 2>&1 || return 1
  for element in "$@"; do gst-inspect-1.0 "$element" >/dev/null 2>&1 || return 1; done
}
{ command -v ffprobe && command -v ffmpeg; } >/dev/null 2>&1 || need_apt+=(ffmpeg)
# The RTSP camera fixture: gst-rtsp-server through PyGObject, under Debian's python3; and
# GStreamer as an HLS player (tests/players): playbin3 with hlsdemux2 and the libav decoders.
if ! /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer" >/dev/null 2>&1 \
   || ! gst_has x264enc x265enc avenc_aac mulawenc rtph264pay rtph265pay rtpmp4gpay rtppcmupay \
        videotestsrc audiotestsrc hlsdemux2 avdec_h264; then
  need_apt+=(gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
             gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp
             gir1.2-gst-rtsp-server-1.0 python3-gi python3-gst-1.0 gir1.2-gstreamer-1.0
             gir1.2-gst-plugins-base-1.0)
fi
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# VLC as an HLS player (tests/players): cvlc, and its adaptive (HLS) demuxer, decoders and YUV
# output; it runs as `nobody` through runuser (util-linux) when the tests run as root.
vlc_plugins="/usr/lib/$(uname -m)-linux-gnu/vlc/plugins"
if ! command -v cvlc >/dev/null 2>&1 || [ ! -e "$vlc_plugins/demux/libadaptive_plugin.so" ] \
   || [ ! -e "$vlc_plugins/video_output/libyuv_plugin.so" ]; then
  need_apt+=(vlc-bin vlc-plugin-base)
fi
{ [ "$(id -u)" != 0 ] || command -v runuser >/dev/null 2>&1; } || need_apt+=(util-linux)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
if ((${#need_apt[@]})); then
  echo "installing: ${need_apt[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# hls.js (embedded into the web page at build time), Shaka Player and playwright-core.
if ! npm ls --silent hls.js playwright-core shaka-player >/dev/null 2>&1; then
  npm ci --no-audit --no-fund
fi
# The LL-HLS-aware playlist parser the playlist tests cross-check with.
python3 -c "import m3u8" >/dev/null 2>&1 || python3 -m pip install --quiet m3u8

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked

# Fuzzing smoke: every cargo-fuzz target for 15 s, over its seeds and regression inputs
# (fuzz/README.md). Adds about a minute and a half warm plus the sanitizer build cold.
scripts/fuzz-smoke.sh
