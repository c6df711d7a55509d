#!/usr/bin/env bash
# Remux throughput, Sluice vs. ffmpeg, on the same 4 Mbit/s 1080p30 H.264 + AAC file (1 s GOP,
# 120 s): both demux the MP4, cut 1 s fMP4 segments and write them to disk. Reports CPU seconds
# (user+sys) of each and the ratio. Needs ffmpeg (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${TMPDIR:-/tmp}/sluice-peer-remux
mkdir -p "$work"
clip=$work/1080p30_4mbps.mp4
if [ ! -s "$clip" ]; then
  ffmpeg -v error -f lavfi -i testsrc2=size=1920x1080:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t 120 -c:v libx264 -preset ultrafast -b:v 4M -maxrate 4M -bufsize 4M -g 30 -keyint_min 30 -sc_threshold 0 \
    -bf 0 -pix_fmt yuv420p -c:a aac -b:a 64k -ac 1 -y "$clip"
fi
cargo build -q --release -p sluice-media --example remux
frames=$(ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$clip")

cpu() { # prints user+sys seconds of one run of a command, averaged over 10 runs
  local total=0
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    rm -rf "$work/out" && mkdir -p "$work/out"
    local t
    /usr/bin/time -o "$work/time" -f "%U %S" "$@" >/dev/null 2>&1
    t=$(awk '{print $1+$2}' "$work/time")
    total=$(awk -v a="$total" -v b="$t" 'BEGIN{print a+b}')
  done
  awk -v t="$total" 'BEGIN{print t/10}'
}

sluice=$(cpu target/release/examples/remux "$clip" "$work/out")
ffmpeg=$(cpu ffmpeg -v error -i "$clip" -c copy -f hls -hls_segment_type fmp4 -hls_time 1 \
  -hls_list_size 0 -hls_fmp4_init_filename init.mp4 "$work/out/p.m3u8")
awk -v s="$sluice" -v f="$ffmpeg" -v n="$frames" 'BEGIN {
  printf "video frames: %d\n", n
  printf "sluice remux: %.3f CPU s  (%.0f frames/CPU s)\n", s, n / (s > 0 ? s : 0.001)
  printf "ffmpeg remux: %.3f CPU s  (%.0f frames/CPU s)\n", f, n / (f > 0 ? f : 0.001)
  printf "ffmpeg/sluice CPU ratio: %.1fx\n", f / (s > 0 ? s : 0.001)
}'
