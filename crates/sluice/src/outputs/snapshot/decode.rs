//! One H.264 access unit to one YUV 4:2:0 picture, with Cisco's OpenH264 decoder (built from
//! source by the `openh264` crate; no runtime download).

use openh264::OpenH264API;
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig};
use openh264::formats::YUVSource;

use super::error::SnapshotError;
use super::scale::PlaneRef;

/// A decoded picture's planes, borrowed from the decoder.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Picture<'a> {
    pub y: PlaneRef<'a>,
    pub u: PlaneRef<'a>,
    pub v: PlaneRef<'a>,
}

/// Decodes `annex_b` (parameter sets and one picture's NAL units, behind start codes) with a
/// fresh decoder and hands its picture to `use_picture`.
///
/// OpenH264 outputs a picture either from the decode call itself or, if it holds it back for
/// reordering, from a flush; both are tried.
pub(crate) fn decode<R>(
    annex_b: &[u8],
    use_picture: impl FnOnce(Picture<'_>) -> Result<R, SnapshotError>,
) -> Result<R, SnapshotError> {
    let failed = |e: openh264::Error| SnapshotError::Undecodable(format!("OpenH264: {e}"));
    let mut decoder = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
        .map_err(failed)?;
    let mut use_picture = Some(use_picture);
    let mut take = |yuv: &DecodedYUV<'_>| match use_picture.take() {
        Some(f) => f(picture(yuv)?),
        None => Err(SnapshotError::NoPicture),
    };
    if let Some(result) = decoder
        .decode(annex_b)
        .map_err(failed)?
        .map(|yuv| take(&yuv))
    {
        return result;
    }
    let flushed = decoder.flush_remaining().map_err(failed)?;
    match flushed.last() {
        Some(yuv) => take(yuv),
        None => Err(SnapshotError::NoPicture),
    }
}

/// The planes of a decoded picture, checked against their buffers.
fn picture<'a>(yuv: &'a DecodedYUV<'_>) -> Result<Picture<'a>, SnapshotError> {
    let (width, height) = yuv.dimensions();
    let (y_stride, u_stride, v_stride) = yuv.strides();
    let (chroma_width, chroma_height) = (width.div_ceil(2), height.div_ceil(2));
    let picture = Picture {
        y: PlaneRef {
            data: yuv.y(),
            width,
            height,
            stride: y_stride,
        },
        u: PlaneRef {
            data: yuv.u(),
            width: chroma_width,
            height: chroma_height,
            stride: u_stride,
        },
        v: PlaneRef {
            data: yuv.v(),
            width: chroma_width,
            height: chroma_height,
            stride: v_stride,
        },
    };
    if [picture.y, picture.u, picture.v]
        .iter()
        .all(PlaneRef::is_consistent)
    {
        Ok(picture)
    } else {
        Err(SnapshotError::Undecodable(format!(
            "OpenH264 returned inconsistent planes for a {width}x{height} picture"
        )))
    }
}
