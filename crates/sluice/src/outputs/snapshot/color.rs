//! From the decoded YCbCr flavour (limited or full range; BT.601, BT.709 or BT.2020 matrix) to
//! the one JPEG files use (JFIF: full range, BT.601 matrix), so a camera's limited-range picture
//! keeps its blacks black and an HD picture keeps its hues.
//!
//! The conversion is affine in (Y, Cb, Cr), so it commutes with the area averaging of
//! [`super::scale`] and runs once on the scaled planes. Gamut clipping is left to the JPEG
//! decoder, as for any JPEG.

use super::scale::Plane;
use super::sps::SignalType;

/// Fractional bits of the fixed-point coefficients.
const BITS: u32 = 16;

/// An affine map from source (Y, Cb − 128, Cr − 128) to JFIF (Y, Cb − 128, Cr − 128), in
/// fixed point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Conversion {
    rows: [[i32; 3]; 3],
    luma_offset: i32,
}

/// Luma coefficients (Kr, Kb) of an H.273 `matrix_coefficients` value.
fn luma_coefficients(matrix: u8) -> Option<(f64, f64)> {
    match matrix {
        1 => Some((0.2126, 0.0722)),      // BT.709
        4 => Some((0.30, 0.11)),          // FCC
        5 | 6 => Some((0.299, 0.114)),    // BT.601 (BT.470BG, SMPTE 170M)
        7 => Some((0.212, 0.087)),        // SMPTE 240M
        9 | 10 => Some((0.2627, 0.0593)), // BT.2020
        _ => None,
    }
}

const JFIF: (f64, f64) = (0.299, 0.114);

impl Conversion {
    /// The conversion for `signal`. An unspecified (or unsupported) matrix is taken as BT.709
    /// for pictures at least 720 rows high and BT.601 below, as browsers and mpv do.
    pub fn new(signal: SignalType, stored_height: usize) -> Conversion {
        let default = if stored_height >= 720 {
            (0.2126, 0.0722)
        } else {
            JFIF
        };
        let k = signal.matrix.and_then(luma_coefficients).unwrap_or(default);
        let (y_offset, y_range, c_range) = if signal.full_range {
            (0.0, 255.0, 255.0)
        } else {
            (16.0, 219.0, 224.0)
        };
        // Source (Y, Cb − 128, Cr − 128) → normalised R'G'B' → JFIF (Y, Cb − 128, Cr − 128).
        let to_jfif = |y: f64, cb: f64, cr: f64| -> [f64; 3] {
            let (yn, pb, pr) = ((y - y_offset) / y_range, cb / c_range, cr / c_range);
            let (kr, kb) = k;
            let r = yn + 2.0 * (1.0 - kr) * pr;
            let b = yn + 2.0 * (1.0 - kb) * pb;
            let g = (yn - kr * r - kb * b) / (1.0 - kr - kb);
            let (jr, jb) = JFIF;
            let jy = jr * r + (1.0 - jr - jb) * g + jb * b;
            [
                255.0 * jy,
                255.0 * (b - jy) / (2.0 * (1.0 - jb)),
                255.0 * (r - jy) / (2.0 * (1.0 - jr)),
            ]
        };
        let origin = to_jfif(0.0, 0.0, 0.0);
        let columns = [
            to_jfif(1.0, 0.0, 0.0),
            to_jfif(0.0, 1.0, 0.0),
            to_jfif(0.0, 0.0, 1.0),
        ];
        let fixed = |v: f64| (v * f64::from(1u32 << BITS)).round() as i32;
        let mut rows = [[0; 3]; 3];
        for (i, row) in rows.iter_mut().enumerate() {
            for (j, c) in row.iter_mut().enumerate() {
                *c = fixed(columns[j][i] - origin[i]);
            }
        }
        Conversion {
            rows,
            luma_offset: fixed(origin[0]),
        }
    }

    /// Whether the source already is JFIF's YCbCr (full range, BT.601).
    pub fn is_identity(&self) -> bool {
        let one = 1 << BITS;
        self.luma_offset == 0 && self.rows == [[one, 0, 0], [0, one, 0], [0, 0, one]]
    }

    /// Converts full-resolution `y` and its chroma planes, which are sampled at half its width
    /// and height (rounded up), in place.
    pub fn apply(&self, y: &mut Plane, cb: &mut Plane, cr: &mut Plane) {
        if self.is_identity() {
            return;
        }
        let round = 1 << (BITS - 1);
        let [ly, lb, lr] = self.rows[0];
        // Luma first: it reads the chroma planes before they change.
        for (row, line) in y.data.chunks_exact_mut(y.width).enumerate() {
            let c_row = row / 2 * cb.width;
            for (x, v) in line.iter_mut().enumerate() {
                let pb = i32::from(cb.data[c_row + x / 2]) - 128;
                let pr = i32::from(cr.data[c_row + x / 2]) - 128;
                let sum = ly * i32::from(*v) + lb * pb + lr * pr + self.luma_offset + round;
                *v = (sum >> BITS).clamp(0, 255) as u8;
            }
        }
        let [_, bb, br] = self.rows[1];
        let [_, rb, rr] = self.rows[2];
        for (b, r) in cb.data.iter_mut().zip(cr.data.iter_mut()) {
            let (pb, pr) = (i32::from(*b) - 128, i32::from(*r) - 128);
            *b = (((bb * pb + br * pr + round) >> BITS) + 128).clamp(0, 255) as u8;
            *r = (((rb * pb + rr * pr + round) >> BITS) + 128).clamp(0, 255) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(signal: SignalType, height: usize, ycbcr: [u8; 3]) -> [u8; 3] {
        let plane = |v: u8| Plane {
            data: vec![v],
            width: 1,
            height: 1,
        };
        let (mut y, mut cb, mut cr) = (plane(ycbcr[0]), plane(ycbcr[1]), plane(ycbcr[2]));
        Conversion::new(signal, height).apply(&mut y, &mut cb, &mut cr);
        [y.data[0], cb.data[0], cr.data[0]]
    }

    const LIMITED: SignalType = SignalType {
        full_range: false,
        matrix: None,
    };

    #[test]
    fn full_range_bt601_is_untouched() {
        let signal = SignalType {
            full_range: true,
            matrix: Some(6),
        };
        assert!(Conversion::new(signal, 1080).is_identity());
        assert!(
            Conversion::new(
                SignalType {
                    matrix: None,
                    ..signal
                },
                480
            )
            .is_identity()
        );
        assert!(
            !Conversion::new(
                SignalType {
                    matrix: None,
                    ..signal
                },
                720
            )
            .is_identity()
        );
    }

    #[test]
    fn limited_range_is_stretched() {
        assert_eq!(convert(LIMITED, 360, [16, 128, 128]), [0, 128, 128]);
        assert_eq!(convert(LIMITED, 360, [235, 128, 128]), [255, 128, 128]);
        assert_eq!(convert(LIMITED, 360, [126, 128, 128]), [128, 128, 128]);
        assert_eq!(convert(LIMITED, 360, [0, 16, 240]), [0, 0, 255]);
        assert_eq!(convert(LIMITED, 360, [255, 240, 16]), [255, 255, 0]);
    }

    #[test]
    fn bt709_red_becomes_bt601_red() {
        // Pure red, limited range: BT.709 (63, 102, 240) → JFIF (76, 85, 255).
        let bt709 = SignalType {
            full_range: false,
            matrix: Some(1),
        };
        let [y, cb, cr] = convert(bt709, 1080, [63, 102, 240]);
        assert!(
            y.abs_diff(76) <= 1 && cb.abs_diff(85) <= 1 && cr >= 254,
            "{y} {cb} {cr}"
        );
        // The same bytes read as BT.601 are another colour.
        assert_ne!(convert(LIMITED, 360, [63, 102, 240]), [y, cb, cr]);
    }
}
