//! Oriented YCbCr planes to a baseline JPEG with `jpeg-encoder`, fed YCbCr directly (no RGB
//! round trip) through its [`ImageBuffer`] trait, which also applies the orientation as it reads.

use jpeg_encoder::{ChromaSubsamplingMethod, Encoder, ImageBuffer, JpegColorType, SamplingFactor};

use super::error::SnapshotError;
use super::orient::Orientation;
use super::scale::Plane;

/// Stored (not yet oriented) JFIF YCbCr planes; chroma at half the luma size, rounded up.
pub(crate) struct Planes {
    pub y: Plane,
    pub cb: Plane,
    pub cr: Plane,
}

/// The planes as the encoder reads them: row by row of the displayed picture.
struct Oriented<'a> {
    planes: &'a Planes,
    orientation: Orientation,
    width: u16,
    height: u16,
}

impl ImageBuffer for Oriented<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.width
    }

    fn height(&self) -> u16 {
        self.height
    }

    fn fill_buffers(&self, row: u16, buffers: &mut [Vec<u8>; 4]) {
        let (width, height) = (usize::from(self.width), usize::from(self.height));
        let Planes { y, cb, cr } = self.planes;
        let row = usize::from(row);
        if self.orientation == Orientation::Normal {
            buffers[0].extend_from_slice(&y.data[row * width..(row + 1) * width]);
            let chroma = row / 2 * cb.width;
            for x in 0..width {
                buffers[1].push(cb.data[chroma + x / 2]);
                buffers[2].push(cr.data[chroma + x / 2]);
            }
            return;
        }
        for x in 0..width {
            let (sx, sy) = self.orientation.source(x, row, width, height);
            buffers[0].push(y.at(sx, sy));
            buffers[1].push(cb.at(sx / 2, sy / 2));
            buffers[2].push(cr.at(sx / 2, sy / 2));
        }
    }
}

/// Encodes the stored `planes` turned by `orientation` at `quality` (1–100), with 4:2:0 chroma
/// like the source. Returns the file and its displayed width and height.
pub(crate) fn encode(
    planes: &Planes,
    orientation: Orientation,
    quality: u8,
) -> Result<(Vec<u8>, u32, u32), SnapshotError> {
    let (width, height) = orientation.apply_to_size(planes.y.width as u32, planes.y.height as u32);
    let too_big = |_| SnapshotError::Encode(format!("{width}x{height} exceeds JPEG's 65535"));
    let image = Oriented {
        planes,
        orientation,
        width: u16::try_from(width).map_err(too_big)?,
        height: u16::try_from(height).map_err(too_big)?,
    };
    let mut out = Vec::with_capacity(planes.y.data.len() / 4);
    let mut encoder = Encoder::new(&mut out, quality.clamp(1, 100));
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    encoder.set_chroma_subsampling_method(ChromaSubsamplingMethod::Average);
    encoder
        .encode_image(image)
        .map_err(|e| SnapshotError::Encode(e.to_string()))?;
    Ok((out, width, height))
}
