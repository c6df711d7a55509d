//! From the MP4 form of H.264 (an `avcC` record and length-prefixed NAL units) to the Annex B
//! byte stream (start codes) that OpenH264 reads.

const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// What a decoder needs from an `avcC` record (ISO/IEC 14496-15 §5.3.3).
#[derive(Debug)]
pub(crate) struct AvcConfig<'a> {
    /// Bytes in each NAL unit's length prefix in the samples: 1, 2 or 4.
    pub length_size: usize,
    /// The sequence parameter sets, without start codes.
    pub sps: Vec<&'a [u8]>,
    /// The picture parameter sets, without start codes.
    pub pps: Vec<&'a [u8]>,
}

/// Parses an `avcC` record body. Trailing bytes (the High-profile extension) are ignored.
pub(crate) fn parse_avcc(avcc: &[u8]) -> Result<AvcConfig<'_>, &'static str> {
    if avcc.len() < 6 {
        return Err("avcC shorter than its 6-byte header");
    }
    if avcc[0] != 1 {
        return Err("avcC configurationVersion is not 1");
    }
    let length_size = usize::from(avcc[4] & 0x03) + 1;
    if length_size == 3 {
        return Err("avcC NAL length size of 3 bytes is not allowed");
    }
    let mut pos = 5;
    let num_sps = usize::from(avcc[pos] & 0x1f);
    pos += 1;
    let (sps, next) = parameter_sets(avcc, pos, num_sps)?;
    pos = next;
    let num_pps = usize::from(*avcc.get(pos).ok_or("avcC has no PPS count")?);
    let (pps, _) = parameter_sets(avcc, pos + 1, num_pps)?;
    Ok(AvcConfig {
        length_size,
        sps,
        pps,
    })
}

fn parameter_sets(
    buf: &[u8],
    mut pos: usize,
    count: usize,
) -> Result<(Vec<&[u8]>, usize), &'static str> {
    let mut sets = Vec::with_capacity(count);
    for _ in 0..count {
        let len = buf
            .get(pos..pos + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or("avcC parameter set length is truncated")?;
        let set = buf
            .get(pos + 2..pos + 2 + len)
            .ok_or("avcC parameter set is truncated")?;
        sets.push(set);
        pos += 2 + len;
    }
    Ok((sets, pos))
}

/// The NAL units of a sample made of `length_size`-byte big-endian lengths, each followed by
/// that many bytes. Empty NAL units are skipped; a length running past the end is an error.
pub(crate) fn sample_nal_units(
    sample: &[u8],
    length_size: usize,
) -> Result<Vec<&[u8]>, &'static str> {
    let mut units = Vec::new();
    let mut rest = sample;
    while !rest.is_empty() {
        if rest.len() < length_size {
            return Err("truncated NAL unit length prefix");
        }
        let (prefix, tail) = rest.split_at(length_size);
        let len = prefix
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len > tail.len() {
            return Err("NAL unit length runs past the end of the sample");
        }
        let (unit, tail) = tail.split_at(len);
        if !unit.is_empty() {
            units.push(unit);
        }
        rest = tail;
    }
    Ok(units)
}

/// One Annex B access unit: the configuration's SPS and PPS, then the sample's NAL units, each
/// behind a 4-byte start code.
pub(crate) fn access_unit(config: &AvcConfig<'_>, units: &[&[u8]]) -> Vec<u8> {
    let all = || config.sps.iter().chain(&config.pps).chain(units);
    let mut out = Vec::with_capacity(all().map(|u| u.len() + 4).sum());
    for unit in all() {
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(unit);
    }
    out
}

/// The type of a NAL unit (`nal_unit_type`, the low 5 bits of its first byte).
pub(crate) fn nal_type(unit: &[u8]) -> u8 {
    unit.first().map_or(0, |b| b & 0x1f)
}

/// `nal_unit_type` of a sequence parameter set.
pub(crate) const NAL_SPS: u8 = 7;
/// `nal_unit_type` of a coded slice of an IDR picture.
pub(crate) const NAL_IDR: u8 = 5;
/// `nal_unit_type` of a coded slice of a non-IDR picture.
pub(crate) const NAL_SLICE: u8 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    fn avcc(sps: &[u8], pps: &[u8], length_size_minus_one: u8) -> Vec<u8> {
        let mut out = vec![1, 0x64, 0, 0x1f, 0xfc | length_size_minus_one, 0xe1];
        out.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        out.extend_from_slice(sps);
        out.push(1);
        out.extend_from_slice(&(pps.len() as u16).to_be_bytes());
        out.extend_from_slice(pps);
        out
    }

    #[test]
    fn converts_config_and_sample_to_annex_b() {
        let record = avcc(&[0x67, 1, 2], &[0x68, 3], 3);
        let config = parse_avcc(&record).unwrap();
        assert_eq!(config.length_size, 4);
        let sample = [0, 0, 0, 2, 0x65, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0x06];
        let units = sample_nal_units(&sample, config.length_size).unwrap();
        assert_eq!(units, vec![&[0x65, 9][..], &[0x06][..]]);
        assert_eq!(
            access_unit(&config, &units),
            [
                0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 9, 0, 0, 0, 1, 0x06
            ]
        );
    }

    #[test]
    fn two_byte_lengths() {
        let record = avcc(&[0x67, 1, 2], &[0x68, 3], 1);
        let config = parse_avcc(&record).unwrap();
        assert_eq!(config.length_size, 2);
        let units = sample_nal_units(&[0, 1, 0x65, 0, 2, 0x41, 7], 2).unwrap();
        assert_eq!(units, vec![&[0x65][..], &[0x41, 7][..]]);
    }

    #[test]
    fn rejects_truncation() {
        let record = avcc(&[0x67, 1, 2], &[0x68, 3], 3);
        for len in 0..record.len() - 1 {
            assert!(parse_avcc(&record[..len]).is_err(), "{len}");
        }
        assert!(sample_nal_units(&[0, 0, 0, 5, 0x65], 4).is_err());
        assert!(sample_nal_units(&[0, 0], 4).is_err());
    }
}
