//! What a viewer needs from an LL-HLS media playlist: the parts listed with their URIs and
//! the wall-clock time each one's media ends at, the preload hint, the part target and the
//! init segment.
//!
//! A part's end time is its segment's `EXT-X-PROGRAM-DATE-TIME` plus the durations of the parts
//! before it and its own. Sluice stamps a segment with the wall clock at which the run's first
//! frame arrived plus the media time since, and a part is published when the first frame after
//! it arrives, so on a steady source that end time is the part's publish time to within the
//! jitter of frame arrival and the millisecond rounding of the tag.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One part listed in a playlist.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// Media sequence number of its segment.
    pub msn: u64,
    /// Index within the segment.
    pub index: u64,
    /// URI as written (relative to the playlist).
    pub uri: String,
    /// Wall-clock time at which its media ends (see the module docs); `None` without a
    /// preceding `EXT-X-PROGRAM-DATE-TIME`.
    pub end_time: Option<SystemTime>,
}

/// The parts of a media playlist and what follows them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MediaPlaylist {
    /// `PART-TARGET`, seconds.
    pub part_target: Option<f64>,
    /// The last `EXT-X-MAP` URI.
    pub map_uri: Option<String>,
    /// Every part listed, in order.
    pub parts: Vec<Part>,
    /// The part named by `EXT-X-PRELOAD-HINT`, as (msn, index).
    pub hint: Option<(u64, u64)>,
}

/// Parses a media playlist; lines it does not know are skipped, and parts whose URI does not
/// name `segment/{msn}.{index}.m4s` are left out.
pub fn parse(text: &str) -> MediaPlaylist {
    let mut out = MediaPlaylist::default();
    let mut pdt: Option<SystemTime> = None;
    let mut offset = 0.0f64;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            pdt = parse_date_time(v.trim());
            offset = 0.0;
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-PART:") {
            let duration = attr(attrs, "DURATION").and_then(|d| d.parse::<f64>().ok());
            let uri = attr(attrs, "URI");
            let (Some(duration), Some(uri)) = (duration, uri) else {
                continue;
            };
            offset += duration;
            if let Some((msn, index)) = part_name(uri) {
                out.parts.push(Part {
                    msn,
                    index,
                    uri: uri.to_string(),
                    end_time: pdt.map(|t| t + Duration::from_secs_f64(offset)),
                });
            }
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-PART-INF:") {
            out.part_target = attr(attrs, "PART-TARGET").and_then(|v| v.parse().ok());
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-MAP:") {
            out.map_uri = attr(attrs, "URI").map(str::to_string);
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            if attr(attrs, "TYPE") == Some("PART") {
                out.hint = attr(attrs, "URI").and_then(part_name);
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            // A complete segment's URI: the next segment's parts start from its own date.
            pdt = None;
        }
    }
    out
}

/// The value of attribute `name` in an attribute list (quotes removed).
fn attr<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = attrs;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], quoted[end + 1..].trim_start_matches(','))
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        if key.trim() == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

/// `./segment/{msn}.{index}.m4s` → (msn, index).
pub fn part_name(uri: &str) -> Option<(u64, u64)> {
    let name = uri.rsplit('/').next()?.strip_suffix(".m4s")?;
    let (msn, index) = name.split_once('.')?;
    Some((msn.parse().ok()?, index.parse().ok()?))
}

/// `YYYY-MM-DDTHH:MM:SS[.fff](Z|+00:00)`, UTC only (what Sluice writes).
pub fn parse_date_time(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':');
    let hour: i64 = t.next()?.parse().ok()?;
    let minute: i64 = t.next()?.parse().ok()?;
    let seconds: f64 = t.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || !(0.0..61.0).contains(&seconds) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_secs_f64(seconds))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYLIST: &str = "#EXTM3U
#EXT-X-TARGETDURATION:1
#EXT-X-VERSION:9
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.720,CAN-SKIP-UNTIL=6.0
#EXT-X-PART-INF:PART-TARGET=0.240
#EXT-X-MEDIA-SEQUENCE:3
#EXT-X-MAP:URI=\"init/0.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2024-02-29T23:59:59.500Z
#EXTINF:1.000,
./segment/3.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-02-29T23:59:59.900Z
#EXT-X-PART:DURATION=0.240,URI=\"./segment/4.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.240,URI=\"./segment/4.1.m4s\"
#EXTINF:0.480,
./segment/4.m4s
#EXT-X-PROGRAM-DATE-TIME:2024-03-01T00:00:00.380Z
#EXT-X-PART:DURATION=0.240,URI=\"./segment/5.0.m4s\",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"./segment/5.1.m4s\"
";

    #[test]
    fn parts_with_their_end_times() {
        let p = parse(PLAYLIST);
        assert_eq!(p.part_target, Some(0.24));
        assert_eq!(p.map_uri.as_deref(), Some("init/0.mp4"));
        assert_eq!(p.hint, Some((5, 1)));
        let names: Vec<(u64, u64)> = p.parts.iter().map(|p| (p.msn, p.index)).collect();
        assert_eq!(names, vec![(4, 0), (4, 1), (5, 0)]);
        // 2024-03-01T00:00:00Z is 1709251200 s after the epoch.
        let ms = |t: Option<SystemTime>| {
            let since = t.unwrap().duration_since(UNIX_EPOCH).unwrap();
            since.as_secs_f64() * 1000.0 - 1_709_251_200_000.0
        };
        for (part, expected) in p.parts.iter().zip([140.0, 380.0, 620.0]) {
            let got = ms(part.end_time);
            assert!((got - expected).abs() < 0.01, "{got} vs {expected}");
        }
        assert_eq!(p.parts[2].uri, "./segment/5.0.m4s");
    }

    #[test]
    fn malformed_input_is_skipped() {
        assert_eq!(parse(""), MediaPlaylist::default());
        let p = parse(
            "#EXT-X-PART:DURATION=x,URI=\"a\"\n#EXT-X-PART:URI=\"./segment/1.0.m4s\n\
             #EXT-X-PRELOAD-HINT:TYPE=MAP,URI=\"init.mp4\"\n#EXT-X-PART-INF:PART-TARGET=\n",
        );
        assert_eq!(p, MediaPlaylist::default());
        assert_eq!(parse_date_time("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_date_time("2024-01-01T00:00:00"), None);
        assert_eq!(parse_date_time("garbage"), None);
        assert_eq!(part_name("./segment/7.m4s"), None);
        assert_eq!(part_name("./segment/7.2.m4s"), Some((7, 2)));
    }
}
