//! The camera simulator's send time, carried in each video access unit as an H.264 SEI message
//! (`user_data_unregistered`), so that whoever receives the frame, directly or remuxed into an
//! HLS part, can tell when it left the camera.
//!
//! Sluice and ffmpeg copy SEI NAL units through, so a viewer finds the send time of a part's
//! first frame in the part's `mdat`, and the retina reader in the frame. The NAL unit is 28
//! bytes: type 6, payload type 5, size 24, a 16-byte UUID (`SluiceBenchClock`), the Unix time
//! in microseconds as eight 7-bit groups with the high bit set (so the payload holds no zero
//! byte and needs no emulation prevention), and the RBSP stop bit.

use std::time::{SystemTime, UNIX_EPOCH};

/// Identifies the SEI message.
pub const UUID: &[u8; 16] = b"SluiceBenchClock";

/// Length of the SEI NAL unit.
pub const NAL_LEN: usize = 28;

/// The SEI NAL unit carrying `micros` (Unix time in microseconds, lower 56 bits).
pub fn encode(micros: u64) -> [u8; NAL_LEN] {
    let mut nal = [0u8; NAL_LEN];
    nal[..3].copy_from_slice(&[0x06, 0x05, 24]);
    nal[3..19].copy_from_slice(UUID);
    for i in 0..8 {
        let shift = 7 * (7 - i);
        nal[19 + i] = 0x80 | ((micros >> shift) & 0x7f) as u8;
    }
    nal[27] = 0x80;
    nal
}

/// The send time in the first SEI message of ours found in `data` (a frame, or a whole fMP4
/// part), in Unix microseconds.
pub fn find(data: &[u8]) -> Option<u64> {
    let at = data.windows(UUID.len()).position(|w| w == UUID)?;
    let groups = data.get(at + UUID.len()..at + UUID.len() + 8)?;
    groups.iter().try_fold(0u64, |acc, &b| {
        (b & 0x80 != 0).then_some((acc << 7) | u64::from(b & 0x7f))
    })
}

/// Now, in Unix microseconds.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Milliseconds from `sent` (Unix microseconds) to `at`, negative if `at` is earlier.
pub fn ms_since(sent: u64, at: SystemTime) -> f64 {
    let at = at
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e6);
    (at - sent as f64) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_inside_other_data() {
        let t = 1_733_333_333_123_456u64;
        let nal = encode(t);
        assert!(
            nal.iter().all(|&b| b != 0),
            "no zero byte, no emulation prevention"
        );
        let mut part = vec![0u8; 100];
        part.extend_from_slice(&nal);
        part.extend_from_slice(&encode(t + 40_000));
        assert_eq!(find(&part), Some(t));
        assert_eq!(find(&part[..110]), None);
        assert_eq!(find(&nal[..27]), Some(t));
        assert_eq!(find(&nal[..26]), None);
        let mut bad = nal;
        bad[20] = 0x01;
        assert_eq!(find(&bad), None);
    }
}
