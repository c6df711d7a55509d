#!/usr/bin/env bash
# Player benchmark: per HLS client (hls.js, Shaka, Chromium native, GStreamer, ffmpeg, VLC),
# time to first frame on a cold and a warm stream, frames per second, stalls, and for hls.js
# and Shaka the live latency against EXT-X-PROGRAM-DATE-TIME, over 60 s of playback each
# (pass another number of seconds as the first argument). See benches/players.py and
# BENCHMARKS.md. Needs the player tests' peers (scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p sluice
exec /usr/bin/python3 benches/players.py "${CARGO_TARGET_DIR:-target}/release/sluice" "$@"
