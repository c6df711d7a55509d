//! HLS playlist rendering (RFC 8216bis), from a [`SegmentRing`].
//!
//! The text is deterministic for a given ring, so tests pin it exactly.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::ring::{Segment, SegmentRing};
use crate::track::TrackKind;

/// How playlists are rendered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlaylistConfig {
    /// Low-latency HLS: parts, part target, blocking reload, preload hint, delta updates.
    pub ll_hls: bool,
    /// The configured part target in seconds; `PART-TARGET` is the longest part actually made
    /// (parts end on frame boundaries, so usually a little less), or this before any part.
    pub part_target: f64,
    /// The minimum segment duration, used as the target duration before any segment completes.
    pub min_segment: f64,
}

/// `PART-HOLD-BACK` in part targets: three, as Apple recommends (RFC 8216bis requires two).
pub const PART_HOLD_BACK_PARTS: f64 = 3.0;
/// `CAN-SKIP-UNTIL` in target durations: the minimum RFC 8216bis allows.
pub const SKIP_UNTIL_TARGETS: u64 = 6;

/// The `PART-TARGET` a ring's playlists advertise, rounded up to whole milliseconds so every
/// part's 3-decimal duration is at most it.
pub fn part_target(ring: &SegmentRing, cfg: &PlaylistConfig) -> f64 {
    let longest = ring.max_part_duration();
    let target = if longest > 0.0 {
        longest
    } else {
        cfg.part_target
    };
    (target * 1000.0 - 1e-6).ceil() / 1000.0
}

/// Renders the media playlist, or `None` while the ring holds no segment with content.
/// `skip` asks for a delta update (`_HLS_skip=YES`): segments older than `CAN-SKIP-UNTIL` from
/// the end are replaced by `EXT-X-SKIP` (LL-HLS only).
pub fn media_playlist(ring: &SegmentRing, cfg: &PlaylistConfig, skip: bool) -> Option<String> {
    let window = window(ring, cfg);
    let first = window.first()?;
    let target = window_target_duration(&window, cfg.min_segment);
    let part_target = part_target(ring, cfg);
    let skip_until = (SKIP_UNTIL_TARGETS * target) as f64;

    let mut out = String::with_capacity(256 + window.len() * 160);
    out.push_str("#EXTM3U\n");
    let _ = writeln!(out, "#EXT-X-VERSION:{}", if cfg.ll_hls { 9 } else { 6 });
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", first.sequence);
    let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", first.discontinuity);
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    if cfg.ll_hls {
        let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={part_target:.3}");
        let _ = writeln!(
            out,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={skip_until:.1},PART-HOLD-BACK={:.3}",
            PART_HOLD_BACK_PARTS * part_target
        );
    }
    out.push_str("#EXT-X-MAP:URI=\"init.mp4\"\n");

    // Durations from each segment's end to the end of the playlist.
    let total: f64 = window.iter().map(|s| s.duration_so_far()).sum();
    let mut ends = Vec::with_capacity(window.len());
    let mut elapsed = 0.0;
    for seg in &window {
        elapsed += seg.duration_so_far();
        ends.push(total - elapsed);
    }

    // Delta update: skip the complete segments that end further than CAN-SKIP-UNTIL from the
    // end of the playlist.
    let skipped = if cfg.ll_hls && skip {
        window
            .iter()
            .zip(&ends)
            .take_while(|(s, to_end)| s.is_complete() && **to_end > skip_until)
            .count()
    } else {
        0
    };
    if skipped > 0 {
        let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
    }

    // Discontinuities are relative to the segment before the first one shown (the first
    // segment is compared with itself, as in the reference).
    let before = window[skipped.saturating_sub(1)];
    let mut prev_discontinuity = before.discontinuity;
    let mut prev_init = before.init.id;
    for (i, seg) in window.iter().enumerate().skip(skipped) {
        if seg.discontinuity != prev_discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
            if seg.init.id != prev_init {
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"init/{}.mp4\"", seg.init.id);
            }
        }
        prev_discontinuity = seg.discontinuity;
        prev_init = seg.init.id;
        let _ = writeln!(
            out,
            "#EXT-X-PROGRAM-DATE-TIME:{}",
            format_date_time(seg.start_time)
        );
        // Parts are listed for the segments that end within three target durations of the
        // live edge, as RFC 8216bis recommends.
        if cfg.ll_hls && ends[i] < 3.0 * target as f64 {
            for (p, part) in seg.parts.iter().enumerate() {
                let _ = write!(
                    out,
                    "#EXT-X-PART:DURATION={:.3},URI=\"./segment/{}.{}.m4s\"",
                    part.duration, seg.sequence, p
                );
                if part.independent {
                    out.push_str(",INDEPENDENT=YES");
                }
                out.push('\n');
            }
        }
        if let Some(duration) = seg.duration {
            let _ = writeln!(out, "#EXTINF:{duration:.3},");
            let _ = writeln!(out, "./segment/{}.m4s", seg.sequence);
        }
    }
    if cfg.ll_hls {
        let last = window[window.len() - 1];
        let (s, p) = if last.is_complete() {
            (last.sequence + 1, 0)
        } else {
            (last.sequence, last.parts.len())
        };
        let _ = writeln!(
            out,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"./segment/{s}.{p}.m4s\""
        );
    }
    Some(out)
}

/// What to do with a blocking playlist request (`_HLS_msn`, `_HLS_part`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocking {
    /// The playlist already has what was asked for: answer now.
    Ready,
    /// Not yet: hold the request until the ring changes.
    Wait,
    /// The request can never be satisfied in time (too far ahead): 400.
    Reject,
}

/// How many parts beyond the last one a client may block on (the reference's
/// `max(int(3 / part_target), 3)`).
pub fn advance_part_limit(part_target: f64) -> usize {
    ((3.0 / part_target.max(0.001)) as usize).max(3)
}

/// Decides a blocking request for segment `msn` (complete, when `part` is `None`) or part
/// `part` of it, following RFC 8216bis §6.2.5.2 and the reference's status rules.
pub fn blocking(
    ring: &SegmentRing,
    msn: u64,
    part: Option<usize>,
    advance_limit: usize,
) -> Blocking {
    let Some(last) = ring.live_edge() else {
        return Blocking::Wait;
    };
    let last_seq = last.sequence;
    if msn > last_seq + 2 {
        return Blocking::Reject;
    }
    let Some(part) = part else {
        // The whole segment `msn` must be in the playlist.
        return match ring.get(msn) {
            Some(s) if s.is_complete() => Blocking::Ready,
            None if msn < last_seq => Blocking::Ready,
            _ => Blocking::Wait,
        };
    };
    if msn < last_seq {
        return Blocking::Ready;
    }
    if msn == last_seq {
        if part < last.parts.len() {
            return Blocking::Ready;
        }
        if last.is_complete() {
            // Rollover: a part past the end of a complete segment is the next segment's
            // first part.
            return match ring.get(msn + 1) {
                Some(next) if !next.parts.is_empty() => Blocking::Ready,
                _ => Blocking::Wait,
            };
        }
        // Saturating: `part` is the client's `_HLS_part`, up to `usize::MAX`.
        if part.saturating_add(1) >= last.parts.len() + advance_limit {
            return Blocking::Reject;
        }
        return Blocking::Wait;
    }
    // A segment that has not started yet.
    if part >= advance_limit {
        Blocking::Reject
    } else {
        Blocking::Wait
    }
}

/// The segments a media playlist lists: the complete ones, and in LL-HLS the one in progress
/// once it has a part.
fn window<'a>(ring: &'a SegmentRing, cfg: &PlaylistConfig) -> Vec<&'a Segment> {
    ring.segments()
        .iter()
        .filter(|s| s.is_complete() || (cfg.ll_hls && !s.parts.is_empty()))
        .collect()
}

/// The `EXT-X-TARGETDURATION` the ring's media playlist has now (blocking requests are held
/// for three of them).
pub fn target_duration(ring: &SegmentRing, cfg: &PlaylistConfig) -> u64 {
    window_target_duration(&window(ring, cfg), cfg.min_segment)
}

/// `EXT-X-TARGETDURATION`: the longest segment rounded to the nearest second (RFC 8216bis
/// §4.4.3.1), counting the one in progress, at least 1. The durations are rounded to the
/// milliseconds `EXTINF` shows first, because that is what a client rounds: 2.4996 s is
/// written 2.500 and must get a target of 3.
fn window_target_duration(window: &[&Segment], min_segment: f64) -> u64 {
    let longest = window
        .iter()
        .map(|s| s.duration_so_far())
        .fold(min_segment, f64::max);
    (((longest * 1000.0).round() / 1000.0).round() as u64).max(1)
}

/// Renders the multivariant playlist, or `None` while the ring holds no part yet.
pub fn master_playlist(ring: &SegmentRing) -> Option<String> {
    let last = ring.segments().iter().rev().find(|s| !s.parts.is_empty())?;
    let complete: Vec<&Segment> = ring
        .segments()
        .iter()
        .filter(|s| s.is_complete() && s.duration_so_far() > 0.0)
        .collect();
    let bitrate = |s: &Segment| s.size() as f64 * 8.0 / s.duration_so_far().max(0.001);
    let (peak, average) = if complete.is_empty() {
        let b = bitrate(last);
        (b, b)
    } else {
        let peak = complete.iter().map(|s| bitrate(s)).fold(0.0, f64::max);
        let bytes: usize = complete.iter().map(|s| s.size()).sum();
        let secs: f64 = complete.iter().map(|s| s.duration_so_far()).sum();
        (peak, bytes as f64 * 8.0 / secs)
    };
    let init = &last.init;
    let mut out = String::from("#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let _ = write!(
        out,
        "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\"",
        (peak * 1.2).round() as u64,
        average.round() as u64,
        init.codecs()
    );
    if let Some(video) = init.tracks.iter().find(|t| t.kind() == TrackKind::Video) {
        let _ = write!(out, ",RESOLUTION={}x{}", video.width(), video.height());
    }
    // Cameras carry no closed captions, and saying so spares players a probe: without the
    // attribute Shaka Player (5.2) downloads segments at load to look for CEA-608/708 captions,
    // and on an LL-HLS playlist with fewer than three complete segments its choice of probe
    // segments lands on the one still in progress, which has no URI yet, so the load fails
    // ("Cannot read properties of undefined (reading 'match')" in `URL.getScheme`).
    out.push_str(",CLOSED-CAPTIONS=NONE\nplaylist.m3u8\n");
    Some(out)
}

/// Formats a wall-clock time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_date_time(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let millis = since.subsec_millis();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_dates() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_467_600_123);
        assert_eq!(format_date_time(t), "2026-11-23T21:00:00.123Z");
        assert_eq!(format_date_time(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(format_date_time(leap), "2000-02-29T00:00:00.000Z");
    }
}
