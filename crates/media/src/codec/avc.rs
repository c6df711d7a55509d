//! H.264: the AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3).

use super::CodecError;

/// The RFC 6381 codec string `avc1.PPCCLL` (profile, constraint flags, level in hex).
///
/// Unlike Home Assistant, the level is not capped at 4.1: browsers' MSE checks the real level,
/// and a capped string would understate what the decoder must handle.
pub fn codec_string(avcc: &[u8]) -> Result<String, CodecError> {
    validate(avcc)?;
    Ok(format!(
        "avc1.{:02x}{:02x}{:02x}",
        avcc[1], avcc[2], avcc[3]
    ))
}

/// Checks the record's fixed header and that it carries at least one SPS and one PPS whose
/// lengths fit in the record.
pub fn validate(avcc: &[u8]) -> Result<(), CodecError> {
    if avcc.len() < 7 {
        return Err(CodecError::InvalidAvcc("shorter than its 7-byte header"));
    }
    if avcc[0] != 1 {
        return Err(CodecError::InvalidAvcc("configurationVersion is not 1"));
    }
    if avcc[4] & 0x03 != 3 {
        return Err(CodecError::InvalidAvcc("NAL length size is not 4 bytes"));
    }
    let mut pos = 5;
    let num_sps = usize::from(avcc[pos] & 0x1f);
    pos += 1;
    if num_sps == 0 {
        return Err(CodecError::InvalidAvcc("no SPS"));
    }
    pos = skip_nals(avcc, pos, num_sps)?;
    let num_pps = usize::from(
        *avcc
            .get(pos)
            .ok_or(CodecError::InvalidAvcc("no PPS count"))?,
    );
    if num_pps == 0 {
        return Err(CodecError::InvalidAvcc("no PPS"));
    }
    skip_nals(avcc, pos + 1, num_pps)?;
    Ok(())
}

fn skip_nals(buf: &[u8], mut pos: usize, count: usize) -> Result<usize, CodecError> {
    for _ in 0..count {
        let len = buf
            .get(pos..pos + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or(CodecError::InvalidAvcc("truncated parameter set length"))?;
        pos += 2 + len;
        if pos > buf.len() {
            return Err(CodecError::InvalidAvcc("truncated parameter set"));
        }
    }
    Ok(pos)
}

/// Builds an avcC record body from one SPS and one PPS NAL unit (without start codes), as an
/// RTSP source receives them in `sprop-parameter-sets` or in band.
pub fn avcc_from_parameter_sets(sps: &[u8], pps: &[u8]) -> Result<Vec<u8>, CodecError> {
    if sps.len() < 4 {
        return Err(CodecError::InvalidAvcc("SPS shorter than 4 bytes"));
    }
    let sps_len = u16::try_from(sps.len()).map_err(|_| CodecError::InvalidAvcc("SPS too long"))?;
    let pps_len = u16::try_from(pps.len()).map_err(|_| CodecError::InvalidAvcc("PPS too long"))?;
    let mut out = Vec::with_capacity(11 + sps.len() + pps.len());
    out.extend_from_slice(&[1, sps[1], sps[2], sps[3], 0xff, 0xe1]);
    out.extend_from_slice(&sps_len.to_be_bytes());
    out.extend_from_slice(sps);
    out.push(1);
    out.extend_from_slice(&pps_len.to_be_bytes());
    out.extend_from_slice(pps);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_string_from_sps_and_pps() {
        let sps = [0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9];
        let pps = [0x68, 0xeb, 0xe3, 0xcb];
        let avcc = avcc_from_parameter_sets(&sps, &pps).unwrap();
        assert_eq!(codec_string(&avcc).unwrap(), "avc1.64001f");
    }

    #[test]
    fn rejects_truncated_records() {
        assert!(codec_string(&[1, 0x64, 0, 0x1f]).is_err());
        let sps = [0x67, 0x4d, 0x40, 0x1e];
        let mut avcc = avcc_from_parameter_sets(&sps, &[0x68, 1]).unwrap();
        avcc.truncate(avcc.len() - 1);
        assert_eq!(
            validate(&avcc),
            Err(CodecError::InvalidAvcc("truncated parameter set"))
        );
    }
}
