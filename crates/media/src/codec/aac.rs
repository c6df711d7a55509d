//! AAC: the AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1).

use super::CodecError;

const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// What the muxer and the codec string need from an AudioSpecificConfig.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AacInfo {
    /// Audio object type (2 = AAC-LC); the `N` of `mp4a.40.N`.
    pub object_type: u8,
    /// Sampling rate of the core coder in Hz.
    pub sample_rate: u32,
    /// Channel count from the channel configuration (0 when it is given in a PCE).
    pub channels: u16,
    /// Samples per frame: 960 when `frameLengthFlag` is set, else 1024.
    pub frame_samples: u32,
}

/// Parses the fields of an AudioSpecificConfig that matter for remuxing.
pub fn parse(asc: &[u8]) -> Result<AacInfo, CodecError> {
    let mut bits = BitReader { data: asc, pos: 0 };
    let mut object_type = bits.read(5)?;
    if object_type == 31 {
        object_type = 32 + bits.read(6)?;
    }
    let index = bits.read(4)? as usize;
    let sample_rate = if index == 15 {
        bits.read(24)?
    } else {
        *SAMPLE_RATES
            .get(index)
            .ok_or(CodecError::InvalidAsc("reserved sampling frequency index"))?
    };
    if sample_rate == 0 {
        return Err(CodecError::InvalidAsc("sampling rate is zero"));
    }
    let channel_config = bits.read(4)?;
    let channels = match channel_config {
        0..=6 => channel_config as u16,
        7 => 8,
        _ => 0,
    };
    // GASpecificConfig starts with frameLengthFlag for the plain AAC object types; for SBR/PS
    // (5, 29) the core config follows an extension header, and those frames are 1024 samples
    // of the core rate too.
    let frame_samples = if matches!(object_type, 1..=4 | 6 | 7 | 17 | 19..=23) {
        if bits.read(1).unwrap_or(0) == 1 {
            960
        } else {
            1024
        }
    } else {
        1024
    };
    Ok(AacInfo {
        object_type: object_type as u8,
        sample_rate,
        channels,
        frame_samples,
    })
}

/// Builds the 2-byte AudioSpecificConfig of an AAC-LC stream.
pub fn lc_config(sample_rate: u32, channels: u8) -> Option<[u8; 2]> {
    let index = SAMPLE_RATES.iter().position(|&r| r == sample_rate)? as u8;
    Some([
        (2 << 3) | (index >> 1),
        ((index & 1) << 7) | ((channels & 0x0f) << 3),
    ])
}

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn read(&mut self, n: usize) -> Result<u32, CodecError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = self
                .data
                .get(self.pos / 8)
                .ok_or(CodecError::InvalidAsc("truncated"))?;
            let bit = (byte >> (7 - self.pos % 8)) & 1;
            v = (v << 1) | u32::from(bit);
            self.pos += 1;
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lc_48k_mono() {
        let asc = lc_config(48000, 1).unwrap();
        assert_eq!(asc, [0x11, 0x88]);
        assert_eq!(
            parse(&asc).unwrap(),
            AacInfo {
                object_type: 2,
                sample_rate: 48000,
                channels: 1,
                frame_samples: 1024
            }
        );
    }

    #[test]
    fn explicit_rate_and_escape_object_type() {
        // object type 31 escape → 32 + 0 = 32 (mpeg-1 layer 1), index 15 + 24-bit rate 8000,
        // channel config 2.
        let mut bits: Vec<bool> = Vec::new();
        let mut push = |v: u32, n: usize| (0..n).rev().for_each(|i| bits.push(v >> i & 1 == 1));
        push(31, 5);
        push(0, 6);
        push(15, 4);
        push(8000, 24);
        push(2, 4);
        let bytes: Vec<u8> = bits
            .chunks(8)
            .map(|c| {
                c.iter()
                    .enumerate()
                    .fold(0u8, |a, (i, &b)| a | (u8::from(b) << (7 - i)))
            })
            .collect();
        let info = parse(&bytes).unwrap();
        assert_eq!(
            (info.object_type, info.sample_rate, info.channels),
            (32, 8000, 2)
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse(&[]).is_err());
        assert_eq!(
            parse(&[0x16, 0x80]),
            Err(CodecError::InvalidAsc("reserved sampling frequency index"))
        );
    }
}
