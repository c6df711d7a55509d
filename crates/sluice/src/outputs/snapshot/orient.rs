//! EXIF orientations (TIFF tag 274): how the stored picture is turned for display.

/// One of the eight EXIF orientations, named by what is done to the stored picture to show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Orientation {
    /// 1: as stored.
    Normal,
    /// 2: mirrored left to right.
    MirrorHorizontal,
    /// 3: turned 180°.
    Rotate180,
    /// 4: mirrored top to bottom.
    MirrorVertical,
    /// 5: transposed (mirrored along the top-left to bottom-right diagonal).
    Transpose,
    /// 6: turned 90° clockwise.
    Rotate90,
    /// 7: transversed (mirrored along the top-right to bottom-left diagonal).
    Transverse,
    /// 8: turned 90° counterclockwise.
    Rotate270,
}

impl Orientation {
    /// The orientation of an EXIF value, `None` outside 1..=8.
    pub fn from_exif(value: u8) -> Option<Orientation> {
        Some(match value {
            1 => Orientation::Normal,
            2 => Orientation::MirrorHorizontal,
            3 => Orientation::Rotate180,
            4 => Orientation::MirrorVertical,
            5 => Orientation::Transpose,
            6 => Orientation::Rotate90,
            7 => Orientation::Transverse,
            8 => Orientation::Rotate270,
            _ => return None,
        })
    }

    /// Whether the displayed picture's width is the stored picture's height (5 to 8).
    pub fn swaps_axes(self) -> bool {
        matches!(
            self,
            Orientation::Transpose
                | Orientation::Rotate90
                | Orientation::Transverse
                | Orientation::Rotate270
        )
    }

    /// The stored picture's width and height for a displayed `width` × `height`, or the
    /// displayed size of a stored one (the mapping is its own inverse).
    pub fn apply_to_size(self, width: u32, height: u32) -> (u32, u32) {
        if self.swaps_axes() {
            (height, width)
        } else {
            (width, height)
        }
    }

    /// The stored sample shown at displayed column `x`, row `y` of a displayed picture of
    /// `width` × `height`.
    #[inline]
    pub(crate) fn source(self, x: usize, y: usize, width: usize, height: usize) -> (usize, usize) {
        let (right, bottom) = (width - 1 - x, height - 1 - y);
        match self {
            Orientation::Normal => (x, y),
            Orientation::MirrorHorizontal => (right, y),
            Orientation::Rotate180 => (right, bottom),
            Orientation::MirrorVertical => (x, bottom),
            Orientation::Transpose => (y, x),
            Orientation::Rotate90 => (y, right),
            Orientation::Transverse => (bottom, right),
            Orientation::Rotate270 => (bottom, x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Displays a stored 3×2 picture `[[a b c] [d e f]]` as rows of letters.
    fn show(o: Orientation) -> Vec<String> {
        let stored = ["abc", "def"];
        let (w, h) = o.apply_to_size(3, 2);
        (0..h as usize)
            .map(|y| {
                (0..w as usize)
                    .map(|x| {
                        let (sx, sy) = o.source(x, y, w as usize, h as usize);
                        stored[sy].as_bytes()[sx] as char
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_eight_orientations() {
        use Orientation::*;
        assert_eq!(show(Normal), ["abc", "def"]);
        assert_eq!(show(MirrorHorizontal), ["cba", "fed"]);
        assert_eq!(show(Rotate180), ["fed", "cba"]);
        assert_eq!(show(MirrorVertical), ["def", "abc"]);
        assert_eq!(show(Transpose), ["ad", "be", "cf"]);
        assert_eq!(show(Rotate90), ["da", "eb", "fc"]);
        assert_eq!(show(Transverse), ["fc", "eb", "da"]);
        assert_eq!(show(Rotate270), ["cf", "be", "ad"]);
    }

    #[test]
    fn exif_values() {
        assert_eq!(Orientation::from_exif(0), None);
        assert_eq!(Orientation::from_exif(9), None);
        assert_eq!(Orientation::from_exif(6), Some(Orientation::Rotate90));
        let swapping: Vec<u8> = (1..=8)
            .filter(|&v| Orientation::from_exif(v).unwrap().swaps_axes())
            .collect();
        assert_eq!(swapping, [5, 6, 7, 8]);
    }
}
