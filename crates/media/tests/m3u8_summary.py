"""Parses HLS playlists with the `m3u8` package (PyPI), an independent LL-HLS-aware parser,
and prints what it understood as JSON, one object per file given on the command line.
Used by tests/playlist.rs to check that every playlist shape Sluice renders parses."""
import json
import sys

import m3u8


def summary(text):
    p = m3u8.loads(text)
    if p.is_variant:
        return {"variants": [{
            "uri": v.uri,
            "bandwidth": v.stream_info.bandwidth,
            "average_bandwidth": v.stream_info.average_bandwidth,
            "codecs": v.stream_info.codecs,
            "resolution": list(v.stream_info.resolution or []),
        } for v in p.playlists]}
    sc = p.server_control
    return {
        "version": p.version,
        "target_duration": p.target_duration,
        "media_sequence": p.media_sequence,
        "discontinuity_sequence": p.discontinuity_sequence,
        "part_target": p.part_inf.part_target if p.part_inf else None,
        "can_block_reload": sc.can_block_reload if sc else None,
        "part_hold_back": sc.part_hold_back if sc else None,
        "can_skip_until": sc.can_skip_until if sc else None,
        "skipped_segments": p.skip.skipped_segments if p.skip else None,
        "preload_hint": p.preload_hint.uri if p.preload_hint else None,
        "map": [m.uri for m in p.segment_map],
        "segments": [{
            "uri": s.uri,
            "duration": s.duration,
            "discontinuity": s.discontinuity,
            "parts": [[pt.uri, pt.duration, bool(pt.independent)] for pt in s.parts],
        } for s in p.segments],
    }


for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        print(json.dumps(summary(f.read())))
