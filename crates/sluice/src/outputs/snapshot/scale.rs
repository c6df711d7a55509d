//! Area-average (box filter) resampling of one 8-bit picture plane.
//!
//! Each output sample is the mean of the source area it covers, source samples partly inside
//! that area weighing by the part inside. Downscaling therefore low-passes exactly as much as it
//! decimates (1920 → 320 averages 6×6 blocks: no aliasing of fine patterns), and upscaling, which
//! only chroma planes see (4:2:0 chroma at half the output size), repeats the nearest sample.
//!
//! Written by hand rather than taken from `fast_image_resize`: the planes are plain 8-bit arrays,
//! a snapshot needs one filter, and the separable filter below is a few dozen lines with
//! fixed-point weights; a SIMD resizer would save about a millisecond on a 1080p snapshot whose
//! decode and JPEG encode take tens of milliseconds.

/// Fixed-point precision of the weights: they sum to `1 << WEIGHT_BITS`.
const WEIGHT_BITS: u32 = 14;
/// Extra bits kept in the intermediate (horizontally filtered) plane.
const INTER_BITS: u32 = 8;

/// A borrowed 8-bit plane whose rows are `stride` bytes apart.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlaneRef<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

impl PlaneRef<'_> {
    /// Whether `data` holds `height` rows of `width` samples, `stride` apart.
    pub fn is_consistent(&self) -> bool {
        self.width > 0
            && self.height > 0
            && self.stride >= self.width
            && (self.height - 1)
                .checked_mul(self.stride)
                .and_then(|n| n.checked_add(self.width))
                .is_some_and(|n| n <= self.data.len())
    }

    fn row(&self, y: usize) -> &[u8] {
        &self.data[y * self.stride..y * self.stride + self.width]
    }
}

/// An owned, tightly packed 8-bit plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plane {
    pub data: Vec<u8>,
    pub width: usize,
    pub height: usize,
}

impl Plane {
    /// The sample at column `x`, row `y`.
    #[inline]
    pub fn at(&self, x: usize, y: usize) -> u8 {
        self.data[y * self.width + x]
    }
}

/// For each output index, the first source index and the weights of the following ones.
struct Taps {
    starts: Vec<usize>,
    /// `weights[offsets[i]..offsets[i + 1]]` belong to output `i`.
    offsets: Vec<usize>,
    weights: Vec<u32>,
}

impl Taps {
    /// Output `i` covers source `[i * ratio, (i + 1) * ratio)`, cut at `src`.
    fn new(src: usize, dst: usize, ratio: f64) -> Taps {
        let one = 1u32 << WEIGHT_BITS;
        let mut taps = Taps {
            starts: Vec::with_capacity(dst),
            offsets: Vec::with_capacity(dst + 1),
            weights: Vec::new(),
        };
        taps.offsets.push(0);
        for i in 0..dst {
            let lo = (i as f64 * ratio).min((src - 1) as f64);
            let hi = ((i + 1) as f64 * ratio).min(src as f64).max(lo + 1e-9);
            let first = lo.floor() as usize;
            let last = (hi.ceil() as usize).clamp(first + 1, src);
            let begin = taps.weights.len();
            for j in first..last {
                let overlap = hi.min((j + 1) as f64) - lo.max(j as f64);
                taps.weights
                    .push((overlap.max(0.0) / (hi - lo) * f64::from(one)).round() as u32);
            }
            // Make the weights sum to exactly one, so flat areas stay exactly flat.
            let row = &mut taps.weights[begin..];
            let sum: u32 = row.iter().sum();
            if let Some(max) = row.iter_mut().max() {
                *max = (*max + one).saturating_sub(sum);
            }
            taps.starts.push(first);
            taps.offsets.push(taps.weights.len());
        }
        taps
    }

    fn of(&self, i: usize) -> (usize, &[u32]) {
        (
            self.starts[i],
            &self.weights[self.offsets[i]..self.offsets[i + 1]],
        )
    }
}

/// Resamples `src` to `width` × `height` (both at least 1) by area averaging.
pub(crate) fn resize(src: PlaneRef<'_>, width: usize, height: usize) -> Plane {
    let ratio = (
        src.width as f64 / width as f64,
        src.height as f64 / height as f64,
    );
    resize_by(src, width, height, ratio)
}

/// Resamples `src` to `width` × `height` where each output sample covers `ratio` source
/// samples across and down (the last ones cut at the plane's edges).
///
/// Chroma planes need this: at 4:2:0 a chroma plane is half its luma plane rounded up, so for
/// an odd output width the last chroma sample covers a single luma column, and the chroma
/// ratio must be the luma one, not chroma width over chroma width.
pub(crate) fn resize_by(
    src: PlaneRef<'_>,
    width: usize,
    height: usize,
    ratio: (f64, f64),
) -> Plane {
    if (src.width, src.height) == (width, height) && ratio == (1.0, 1.0) {
        let mut data = Vec::with_capacity(width * height);
        for y in 0..height {
            data.extend_from_slice(src.row(y));
        }
        return Plane {
            data,
            width,
            height,
        };
    }
    // Horizontal pass: every source row to `width` samples, with INTER_BITS more precision.
    let h_taps = Taps::new(src.width, width, ratio.0);
    let mut inter = vec![0u16; width * src.height];
    for (y, out) in inter.chunks_exact_mut(width).enumerate() {
        let row = src.row(y);
        for (x, o) in out.iter_mut().enumerate() {
            let (start, weights) = h_taps.of(x);
            let acc: u32 = row[start..start + weights.len()]
                .iter()
                .zip(weights)
                .map(|(&s, &w)| u32::from(s) * w)
                .sum();
            let shift = WEIGHT_BITS - INTER_BITS;
            *o = ((acc + (1 << (shift - 1))) >> shift) as u16;
        }
    }
    // Vertical pass, accumulating whole rows so the inner loop runs over contiguous memory.
    let v_taps = Taps::new(src.height, height, ratio.1);
    let mut data = vec![0u8; width * height];
    let mut acc = vec![0u32; width];
    let shift = WEIGHT_BITS + INTER_BITS;
    for (y, out) in data.chunks_exact_mut(width).enumerate() {
        let (start, weights) = v_taps.of(y);
        acc.fill(1 << (shift - 1));
        for (k, &w) in weights.iter().enumerate() {
            let row = &inter[(start + k) * width..(start + k + 1) * width];
            for (a, &s) in acc.iter_mut().zip(row) {
                *a += u32::from(s) * w;
            }
        }
        for (o, &a) in out.iter_mut().zip(&acc) {
            *o = (a >> shift).min(255) as u8;
        }
    }
    Plane {
        data,
        width,
        height,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(data: &[u8], width: usize) -> PlaneRef<'_> {
        PlaneRef {
            data,
            width,
            height: data.len() / width,
            stride: width,
        }
    }

    #[test]
    fn identity_copies_rows_without_padding() {
        let data = [1, 2, 99, 3, 4, 99];
        let src = PlaneRef {
            data: &data,
            width: 2,
            height: 2,
            stride: 3,
        };
        assert_eq!(resize(src, 2, 2).data, [1, 2, 3, 4]);
    }

    #[test]
    fn halving_averages_blocks() {
        let data = [0, 100, 10, 20, 50, 50, 30, 40];
        assert_eq!(resize(plane(&data, 4), 2, 1).data, [50, 25]);
        assert_eq!(resize(plane(&data, 4), 4, 1).data, [25, 75, 20, 30]);
        assert_eq!(resize(plane(&data, 4), 2, 2).data, [50, 15, 50, 35]);
        assert_eq!(resize(plane(&data, 4), 1, 1).data, [38]);
    }

    #[test]
    fn fractional_ratio_weighs_partial_samples() {
        // 3 → 2: outputs cover [0, 1.5) and [1.5, 3).
        let data = [0, 90, 180];
        assert_eq!(resize(plane(&data, 3), 2, 1).data, [30, 150]);
    }

    #[test]
    fn upscaling_repeats_samples() {
        let data = [10, 20, 30, 40];
        assert_eq!(
            resize(plane(&data, 2), 4, 4).data,
            [
                10, 10, 20, 20, 10, 10, 20, 20, 30, 30, 40, 40, 30, 30, 40, 40
            ]
        );
        // Odd output: the middle sample straddles both.
        assert_eq!(resize(plane(&[0, 200], 2), 3, 1).data, [0, 100, 200]);
    }

    #[test]
    fn flat_stays_flat_and_extremes_stay_in_range() {
        for &(sw, dw) in &[(1920, 320), (1920, 7), (7, 3), (641, 319), (5, 5)] {
            for value in [0u8, 1, 128, 254, 255] {
                let data = vec![value; sw * 3];
                let out = resize(plane(&data, sw), dw, 2);
                assert!(out.data.iter().all(|&v| v == value), "{sw}->{dw} {value}");
            }
        }
    }

    #[test]
    fn fine_stripes_average_to_grey() {
        // One-pixel stripes, 1920 → 320: every output averages three black and three white
        // (127.5, which the fixed-point weights round either way).
        let data: Vec<u8> = (0..1920)
            .map(|x| if x % 2 == 0 { 0 } else { 255 })
            .collect();
        let out = resize(plane(&data, 1920), 320, 1);
        assert!(
            out.data.iter().all(|&v| (127..=128).contains(&v)),
            "{:?}",
            &out.data[..8]
        );
    }

    #[test]
    fn chroma_of_an_odd_width_follows_the_luma_ratio() {
        // 8 luma columns (4 chroma) to 5 (3 chroma): chroma covers [0, 1.6), [1.6, 3.2) and
        // the cut [3.2, 4).
        let data = [0, 80, 160, 240];
        let out = resize_by(plane(&data, 4), 3, 1, (1.6, 1.0));
        assert_eq!(out.data, [30, 150, 240]);
        // The plain ratio would spread 4 samples over 3.
        assert_eq!(resize(plane(&data, 4), 3, 1).data, [20, 120, 220]);
    }

    #[test]
    fn consistency_check() {
        let data = [0u8; 10];
        assert!(plane(&data, 5).is_consistent());
        let bad = PlaneRef {
            data: &data,
            width: 4,
            height: 3,
            stride: 4,
        };
        assert!(!bad.is_consistent());
        let short_last_row = PlaneRef {
            data: &data,
            width: 4,
            height: 2,
            stride: 6,
        };
        assert!(short_last_row.is_consistent());
    }
}
