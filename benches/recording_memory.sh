#!/usr/bin/env bash
# Peak memory of a long recording: a 4 Mbit/s 1080p30 H.264 + AAC file source (10 s, looped)
# recorded for DURATION seconds (default 600) with 5 s of lookback. Prints the server's RSS
# before the recording and its peak (sampled every 5 s, and VmHWM) during it, and the clip.
# Usage: benches/recording_memory.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-600}
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
ffmpeg -v error -f lavfi -i testsrc2=size=1920x1080:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
  -t 10 -c:v libx264 -preset ultrafast -b:v 4M -maxrate 4M -bufsize 4M -g 30 -keyint_min 30 -sc_threshold 0 \
  -bf 0 -pix_fmt yuv420p -c:a aac -b:a 64k -ac 1 -y "$work/clip.mp4"
cargo build -q --release
mkdir "$work/rec"
cat > "$work/sluice.yaml" <<EOC
server: { record_dirs: ["$work/rec"] }
streams:
  big: { source: "file://$work/clip.mp4", preload: true }
EOC
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target/release/sluice serve --config "$work/sluice.yaml" --listen "127.0.0.1:$port" >/dev/null 2>"$work/log" &
pid=$!
sleep 30
echo "before recording: $(grep -E 'VmRSS' /proc/$pid/status | tr -s ' \t' ' ')"
curl -s -XPOST "127.0.0.1:$port/api/streams/big/record" -H 'content-type: application/json' \
  -d "{\"path\":\"clip.mp4\",\"duration\":$duration,\"lookback\":5}"; echo
peak=0
while sleep 5; do
  rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
  [ "$rss" -gt "$peak" ] && peak=$rss
  curl -s "127.0.0.1:$port/api/streams/big" | grep -q '"recording":null' && break
done
echo "peak VmRSS during the recording: $peak kB; $(grep VmHWM /proc/$pid/status | tr -s ' \t' ' ')"
ffprobe -v error -show_entries format=duration,size -of compact "$work/rec/clip.mp4"
