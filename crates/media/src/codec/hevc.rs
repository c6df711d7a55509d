//! H.265: the HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3).

use super::CodecError;

/// Length of the record's fixed part, up to and including `numOfArrays`.
const HEADER_LEN: usize = 23;

/// The RFC 6381 / ISO/IEC 14496-15 Annex E codec string, e.g. `hvc1.1.6.L93.B0`:
/// profile space and idc, the 32 compatibility flags bit-reversed in hex, tier and level, and the
/// constraint bytes with trailing zero bytes dropped.
pub fn codec_string(hvcc: &[u8]) -> Result<String, CodecError> {
    if hvcc.len() < HEADER_LEN {
        return Err(CodecError::InvalidHvcc("shorter than its 23-byte header"));
    }
    if hvcc[0] != 1 {
        return Err(CodecError::InvalidHvcc("configurationVersion is not 1"));
    }
    let space = match hvcc[1] >> 6 {
        0 => "",
        1 => "A",
        2 => "B",
        _ => "C",
    };
    let tier = if hvcc[1] & 0x20 != 0 { 'H' } else { 'L' };
    let profile_idc = hvcc[1] & 0x1f;
    let compat = u32::from_be_bytes([hvcc[2], hvcc[3], hvcc[4], hvcc[5]]).reverse_bits();
    let level = hvcc[12];
    let mut s = format!("hvc1.{space}{profile_idc}.{compat:X}.{tier}{level}");
    let constraints = &hvcc[6..12];
    let used = constraints
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i + 1);
    for b in &constraints[..used] {
        s.push_str(&format!(".{b:X}"));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_profile_level_3_1() {
        // general_profile_space 0, tier 0, profile_idc 1; compat flags with bits 1 and 2 set
        // (0x60000000 → reversed 0x6); progressive+frame-only constraint bits (0xB0); level 93.
        let mut hvcc = vec![0u8; HEADER_LEN];
        hvcc[0] = 1;
        hvcc[1] = 0x01;
        hvcc[2..6].copy_from_slice(&[0x60, 0, 0, 0]);
        hvcc[6] = 0xb0;
        hvcc[12] = 93;
        assert_eq!(codec_string(&hvcc).unwrap(), "hvc1.1.6.L93.B0");
    }

    #[test]
    fn high_tier_profile_space_and_no_constraints() {
        let mut hvcc = vec![0u8; HEADER_LEN];
        hvcc[0] = 1;
        hvcc[1] = 0x40 | 0x20 | 0x02;
        hvcc[2..6].copy_from_slice(&[0x20, 0, 0, 0]);
        hvcc[12] = 120;
        assert_eq!(codec_string(&hvcc).unwrap(), "hvc1.A2.4.H120");
    }

    #[test]
    fn rejects_short_record() {
        assert!(codec_string(&[1, 2, 3]).is_err());
    }
}
