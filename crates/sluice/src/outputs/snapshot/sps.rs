//! The colour description of an H.264 sequence parameter set (ITU-T H.264 §7.3.2.1.1 and
//! Annex E): sample range and matrix, which OpenH264 decodes but does not report.

/// The YCbCr flavour of the decoded samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SignalType {
    /// `video_full_range_flag`: samples use 0–255 rather than 16–235 (luma) / 16–240 (chroma).
    pub full_range: bool,
    /// `matrix_coefficients` (H.273), if the SPS says; 2 (unspecified) is reported as `None`.
    pub matrix: Option<u8>,
}

impl Default for SignalType {
    /// What an SPS without a video signal type means: limited range, matrix unspecified.
    fn default() -> Self {
        SignalType {
            full_range: false,
            matrix: None,
        }
    }
}

/// Reads the video signal type of an SPS NAL unit (with its header byte). `None` if the SPS is
/// malformed or truncated before its VUI.
pub(crate) fn signal_type(sps: &[u8]) -> Option<SignalType> {
    let rbsp = unescape(sps.get(1..)?);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.bits(8)?;
    r.bits(16)?; // constraint flags, reserved bits, level_idc
    r.ue()?; // seq_parameter_set_id
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        let chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            r.bit()?; // separate_colour_plane_flag
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? {
            // seq_scaling_matrix_present_flag
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue()?;
            if cycle > 255 {
                return None;
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    r.ue()?; // pic_width_in_mbs_minus1
    r.ue()?; // pic_height_in_map_units_minus1
    if !r.bit()? {
        // frame_mbs_only_flag
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    if r.bit()? {
        // frame_cropping_flag
        for _ in 0..4 {
            r.ue()?;
        }
    }
    if !r.bit()? {
        // vui_parameters_present_flag
        return Some(SignalType::default());
    }
    if r.bit()? {
        // aspect_ratio_info_present_flag
        if r.bits(8)? == 255 {
            r.bits(32)?; // sar_width, sar_height
        }
    }
    if r.bit()? {
        // overscan_info_present_flag
        r.bit()?;
    }
    if !r.bit()? {
        // video_signal_type_present_flag
        return Some(SignalType::default());
    }
    r.bits(3)?; // video_format
    let full_range = r.bit()?;
    let matrix = if r.bit()? {
        // colour_description_present_flag
        r.bits(16)?; // colour_primaries, transfer_characteristics
        Some(r.bits(8)? as u8).filter(|&m| m != 2)
    } else {
        None
    };
    Some(SignalType { full_range, matrix })
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Option<()> {
    let mut last = 8i64;
    let mut next = 8i64;
    for _ in 0..size {
        if next != 0 {
            next = (last + r.se()?).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// Removes emulation prevention bytes (the `03` of each `00 00 03`).
fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Reads bits most significant first; every read is `None` past the end.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    fn bit(&mut self) -> Option<bool> {
        let byte = *self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(bit == 1)
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| Some((acc << 1) | u32::from(self.bit()?)))
    }

    /// Unsigned Exp-Golomb code; longer than 32 bits is treated as malformed.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }

    /// Signed Exp-Golomb code.
    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_full_range_bt709_from_x264_sps() {
        // x264, High profile, 1920x1080, `-color_range pc -colorspace bt709` (yuvj420p).
        let sps = [
            0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x5b, 0x80,
            0x80, 0x80, 0xa0, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x03, 0x00, 0x41, 0xe3,
            0x06, 0x32, 0xc0,
        ];
        let signal = signal_type(&sps).unwrap();
        assert_eq!(
            signal,
            SignalType {
                full_range: true,
                matrix: Some(1)
            }
        );
    }

    #[test]
    fn no_signal_type_means_limited_range() {
        // x264, Baseline profile, 320x240: a VUI with timing but no video signal type.
        let sps = [
            0x67, 0x42, 0xc0, 0x0b, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
            0x10, 0x00, 0x00, 0x03, 0x00, 0x20, 0xf1, 0x42, 0xa4, 0x80,
        ];
        assert_eq!(signal_type(&sps), Some(SignalType::default()));
    }

    #[test]
    fn truncated_or_garbage_is_none_not_a_panic() {
        assert_eq!(signal_type(&[]), None);
        assert_eq!(signal_type(&[0x67, 0x64]), None);
        let mut seed = 1u32;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            let _ = signal_type(&bytes);
        }
    }
}
