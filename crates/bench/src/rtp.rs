//! RTP packetization: H.264 per RFC 6184 (packetization mode 1: single NAL unit packets and FU-A
//! fragments, no aggregation), AAC per RFC 3640 (`AAC-hbr`, one access unit per packet), and the
//! RTP header with RTSP interleaved framing (RFC 2326 section 10.12).

use bytes::{BufMut, Bytes, BytesMut};

/// FU-A NAL unit type (RFC 6184 section 5.8).
const FU_A: u8 = 28;

/// RTP payloads for one H.264 access unit made of `nals` (without start codes or lengths): a
/// NAL unit up to `max_payload` bytes travels alone, a larger one as FU-A fragments. The caller
/// sets the marker bit on the last payload.
pub fn h264_payloads(nals: &[Bytes], max_payload: usize) -> Vec<Bytes> {
    // Room for the two FU bytes and at least one byte of the NAL unit.
    let max_payload = max_payload.max(3);
    let mut out = Vec::new();
    for nal in nals {
        let Some((&header, body)) = nal.split_first() else {
            continue;
        };
        if nal.len() <= max_payload {
            out.push(nal.clone());
            continue;
        }
        let indicator = (header & 0xe0) | FU_A;
        let kind = header & 0x1f;
        let chunk = max_payload - 2;
        let count = body.len().div_ceil(chunk);
        for (i, piece) in body.chunks(chunk).enumerate() {
            let mut fu_header = kind;
            if i == 0 {
                fu_header |= 0x80; // S
            }
            if i + 1 == count {
                fu_header |= 0x40; // E
            }
            let mut p = BytesMut::with_capacity(piece.len() + 2);
            p.put_u8(indicator);
            p.put_u8(fu_header);
            p.put_slice(piece);
            out.push(p.freeze());
        }
    }
    out
}

/// The RTP payload of one raw AAC frame in `AAC-hbr` mode: a 16-bit AU-headers-length (16 bits),
/// one AU-header (13-bit size, 3-bit index 0), then the frame.
pub fn aac_payload(frame: &[u8]) -> Bytes {
    let size = frame.len().min(0x1fff) as u16;
    let mut p = BytesMut::with_capacity(4 + frame.len());
    p.put_u16(16);
    p.put_u16(size << 3);
    p.put_slice(&frame[..usize::from(size)]);
    p.freeze()
}

/// The fields of one RTP packet's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Payload type.
    pub payload_type: u8,
    /// Marker bit (last packet of an access unit).
    pub marker: bool,
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
}

/// Appends one RTP packet as an RTSP interleaved frame: `$`, the channel, the length, the
/// 12-byte RTP header and the payload.
pub fn put_interleaved(out: &mut Vec<u8>, channel: u8, header: Header, payload: &[u8]) {
    let len = (12 + payload.len()).min(usize::from(u16::MAX)) as u16;
    out.extend_from_slice(&[b'$', channel]);
    out.extend_from_slice(&len.to_be_bytes());
    out.push(0x80); // version 2, no padding, extension or CSRC
    out.push((u8::from(header.marker) << 7) | (header.payload_type & 0x7f));
    out.extend_from_slice(&header.sequence.to_be_bytes());
    out.extend_from_slice(&header.timestamp.to_be_bytes());
    out.extend_from_slice(&header.ssrc.to_be_bytes());
    out.extend_from_slice(&payload[..usize::from(len) - 12]);
}

/// Seconds from the NTP epoch (1900) to the Unix epoch.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// What an RTCP sender report (RFC 3550 section 6.4.1) says about one stream.
#[derive(Clone, Copy, Debug)]
pub struct SenderReport {
    /// The stream's SSRC.
    pub ssrc: u32,
    /// Wall-clock time of the report.
    pub time: std::time::SystemTime,
    /// The RTP timestamp of the same instant.
    pub rtp_time: u32,
    /// Packets sent so far.
    pub packets: u32,
    /// Payload octets sent so far.
    pub octets: u32,
}

/// Appends an RTCP sender report without report blocks as an RTSP interleaved frame.
pub fn put_sender_report(out: &mut Vec<u8>, channel: u8, sr: SenderReport) {
    let since = sr
        .time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = (since.as_secs() + NTP_UNIX_OFFSET) as u32;
    let fraction = ((u64::from(since.subsec_nanos()) << 32) / 1_000_000_000) as u32;
    out.extend_from_slice(&[b'$', channel, 0, 28, 0x80, 200, 0, 6]);
    for word in [
        sr.ssrc,
        seconds,
        fraction,
        sr.rtp_time,
        sr.packets,
        sr.octets,
    ] {
        out.extend_from_slice(&word.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reassembles the NAL units of `payloads` as a receiver would.
    fn depacketize(payloads: &[Bytes]) -> Vec<Vec<u8>> {
        let mut nals = Vec::new();
        let mut partial: Option<Vec<u8>> = None;
        for p in payloads {
            if p[0] & 0x1f == FU_A {
                let (start, end) = (p[1] & 0x80 != 0, p[1] & 0x40 != 0);
                if start {
                    assert!(partial.is_none(), "FU-A start inside a fragment");
                    partial = Some(vec![(p[0] & 0xe0) | (p[1] & 0x1f)]);
                }
                let nal = partial.as_mut().expect("FU-A continuation without a start");
                nal.extend_from_slice(&p[2..]);
                if end {
                    nals.push(partial.take().unwrap());
                }
            } else {
                assert!(partial.is_none(), "single NAL unit inside a fragment");
                nals.push(p.to_vec());
            }
        }
        assert!(partial.is_none(), "unfinished fragment");
        nals
    }

    #[test]
    fn h264_fragments_reassemble_to_the_nal_units() {
        let big: Vec<u8> = std::iter::once(0x65)
            .chain((0..5000).map(|i| i as u8))
            .collect();
        let nals = vec![
            Bytes::from_static(&[0x67, 1, 2, 3]),
            Bytes::from_static(&[0x68, 4]),
            Bytes::from(big.clone()),
            Bytes::new(),
        ];
        for max in [3, 100, 1400, 4999, 5001, 10_000] {
            let payloads = h264_payloads(&nals, max);
            assert!(payloads.iter().all(|p| p.len() <= max), "max {max}");
            let expected: Vec<Vec<u8>> = nals[..3].iter().map(|n| n.to_vec()).collect();
            assert_eq!(depacketize(&payloads), expected, "max {max}");
        }
        // NRI bits survive fragmentation; the type goes to the FU header.
        let p = h264_payloads(&[Bytes::from(big)], 1400);
        assert_eq!(p[0][0], 0x60 | FU_A);
        assert_eq!(p[0][1], 0x80 | 5);
        assert_eq!(p.last().unwrap()[1], 0x40 | 5);
    }

    #[test]
    fn aac_payload_has_one_au_header() {
        let p = aac_payload(&[9; 300]);
        assert_eq!(
            &p[..4],
            &[0, 16, (300u16 << 3 >> 8) as u8, (300u16 << 3) as u8]
        );
        assert_eq!(p.len(), 304);
    }

    #[test]
    fn sender_report_layout() {
        let mut out = Vec::new();
        let sr = SenderReport {
            ssrc: 0x0102_0304,
            time: std::time::UNIX_EPOCH + std::time::Duration::from_millis(1500),
            rtp_time: 9,
            packets: 2,
            octets: 3,
        };
        put_sender_report(&mut out, 1, sr);
        assert_eq!(out.len(), 32);
        assert_eq!(&out[..12], &[b'$', 1, 0, 28, 0x80, 200, 0, 6, 1, 2, 3, 4]);
        let ntp_seconds = u32::from_be_bytes(out[12..16].try_into().unwrap());
        assert_eq!(u64::from(ntp_seconds), NTP_UNIX_OFFSET + 1);
        assert_eq!(&out[16..20], &[0x80, 0, 0, 0], "half a second");
        assert_eq!(&out[20..], &[0, 0, 0, 9, 0, 0, 0, 2, 0, 0, 0, 3]);
    }

    #[test]
    fn interleaved_packet_layout() {
        let mut out = Vec::new();
        let header = Header {
            payload_type: 96,
            marker: true,
            sequence: 0x1234,
            timestamp: 0xdead_beef,
            ssrc: 0x0102_0304,
        };
        put_interleaved(&mut out, 2, header, &[0xaa, 0xbb]);
        assert_eq!(
            out,
            [
                b'$',
                2,
                0,
                14,
                0x80,
                0x80 | 96,
                0x12,
                0x34,
                0xde,
                0xad,
                0xbe,
                0xef,
                1,
                2,
                3,
                4,
                0xaa,
                0xbb
            ]
        );
    }
}
