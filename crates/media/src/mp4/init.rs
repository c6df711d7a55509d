//! The init segment: `ftyp` + `moov` with one `trak` per track and `mvex`/`trex`.

use super::boxes::BoxWriter;
use crate::track::{Codec, Track, TrackKind};

/// EXIF orientation (1..=8) of the video, applied through the `tkhd` transformation matrix so
/// the media itself is never transcoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Orientation(u8);

impl Orientation {
    /// No transform.
    pub const NORMAL: Orientation = Orientation(1);

    /// An EXIF orientation value; `None` outside 1..=8.
    pub fn new(exif: u8) -> Option<Self> {
        (1..=8).contains(&exif).then_some(Orientation(exif))
    }

    /// The EXIF value.
    pub fn exif(self) -> u8 {
        self.0.max(1)
    }

    /// The 3×3 matrix `a b u / c d v / x y w` in 16.16 (and 2.30 for u, v, w).
    fn matrix(self) -> [i32; 9] {
        const ONE: i32 = 0x0001_0000;
        const W: i32 = 0x4000_0000;
        let (a, b, c, d) = match self.exif() {
            2 => (-ONE, 0, 0, ONE),  // mirror
            3 => (-ONE, 0, 0, -ONE), // rotate 180
            4 => (ONE, 0, 0, -ONE),  // flip
            5 => (0, -ONE, -ONE, 0), // rotate left and flip
            6 => (0, -ONE, ONE, 0),  // rotate left
            7 => (0, ONE, ONE, 0),   // rotate right and flip
            8 => (0, ONE, -ONE, 0),  // rotate right
            _ => (ONE, 0, 0, ONE),
        };
        [a, b, 0, c, d, 0, 0, 0, W]
    }
}

/// Writes the init segment for `tracks` (track IDs are the indices plus one).
pub fn write_init(tracks: &[Track], orientation: Orientation) -> Vec<u8> {
    let mut w = BoxWriter::with_capacity(1024);
    write_ftyp(&mut w, b"iso5", &[b"iso5", b"iso6", b"mp41"]);
    w.open(b"moov");
    write_mvhd(&mut w, 0, tracks.len());
    for (i, track) in tracks.iter().enumerate() {
        let trak = Trak {
            id: i as u32 + 1,
            entries: std::slice::from_ref(track),
            orientation,
            movie_duration: 0,
            media_duration: 0,
            empty_edit: 0,
        };
        write_trak(&mut w, &trak, |w| {
            for empty in [b"stts", b"stsc", b"stco"] {
                w.open_full(empty, 0, 0);
                w.u32(0);
                w.close();
            }
            w.open_full(b"stsz", 0, 0);
            w.u32(0);
            w.u32(0);
            w.close();
        });
    }
    w.open(b"mvex");
    for i in 0..tracks.len() {
        w.open_full(b"trex", 0, 0);
        w.u32(i as u32 + 1); // track_ID
        w.u32(1); // default_sample_description_index
        w.u32(0); // default_sample_duration
        w.u32(0); // default_sample_size
        w.u32(0); // default_sample_flags
        w.close();
    }
    w.close();
    w.close(); // moov
    w.finish()
}

pub(super) fn write_ftyp(w: &mut BoxWriter, major: &[u8; 4], compatible: &[&[u8; 4]]) {
    w.open(b"ftyp");
    w.bytes(major);
    w.u32(512);
    for brand in compatible {
        w.bytes(*brand);
    }
    w.close();
}

/// `mvhd` with a 1000 Hz movie timescale.
pub(super) fn write_mvhd(w: &mut BoxWriter, duration_ms: u64, tracks: usize) {
    let long = duration_ms > u64::from(u32::MAX);
    w.open_full(b"mvhd", u8::from(long), 0);
    if long {
        w.u64(0);
        w.u64(0);
        w.u32(1000);
        w.u64(duration_ms);
    } else {
        w.u32(0); // creation time
        w.u32(0); // modification time
        w.u32(1000); // timescale
        w.u32(duration_ms as u32);
    }
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.zeros(10);
    write_matrix(w, Orientation::NORMAL);
    w.zeros(24); // pre_defined
    w.u32(tracks as u32 + 1); // next_track_ID
    w.close();
}

fn write_matrix(w: &mut BoxWriter, orientation: Orientation) {
    for v in orientation.matrix() {
        w.i32(v);
    }
}

/// What a `trak` box says about its track.
pub(super) struct Trak<'a> {
    /// Track ID.
    pub id: u32,
    /// Sample descriptions (all of one kind); the first gives the dimensions.
    pub entries: &'a [Track],
    /// Applied to video.
    pub orientation: Orientation,
    /// Duration in the movie timescale (1000 Hz), including `empty_edit`.
    pub movie_duration: u64,
    /// Duration in the track's timescale.
    pub media_duration: u64,
    /// Movie-timescale delay before the media starts (an empty edit), 0 for none.
    pub empty_edit: u64,
}

/// Writes a `trak`; `stbl_tables` writes the sample tables after `stsd`.
pub(super) fn write_trak(
    w: &mut BoxWriter,
    t: &Trak<'_>,
    stbl_tables: impl FnOnce(&mut BoxWriter),
) {
    let track = &t.entries[0];
    let video = track.kind() == TrackKind::Video;
    let long = t.movie_duration > u64::from(u32::MAX) || t.media_duration > u64::from(u32::MAX);
    w.open(b"trak");
    w.open_full(b"tkhd", u8::from(long), 0x3); // enabled, in movie
    if long {
        w.u64(0);
        w.u64(0);
        w.u32(t.id);
        w.u32(0);
        w.u64(t.movie_duration);
    } else {
        w.u32(0);
        w.u32(0);
        w.u32(t.id);
        w.u32(0); // reserved
        w.u32(t.movie_duration as u32);
    }
    w.zeros(8);
    w.u16(0); // layer
    w.u16(0); // alternate group
    w.u16(if video { 0 } else { 0x0100 }); // volume
    w.u16(0);
    write_matrix(
        w,
        if video {
            t.orientation
        } else {
            Orientation::NORMAL
        },
    );
    w.u32(u32::from(track.width()) << 16);
    w.u32(u32::from(track.height()) << 16);
    w.close();

    if t.empty_edit > 0 {
        w.open(b"edts");
        w.open_full(b"elst", 1, 0);
        w.u32(2);
        // An empty edit (media time -1) delays the track, then the media plays from its start.
        w.u64(t.empty_edit);
        w.u64(u64::MAX);
        w.u32(0x0001_0000);
        w.u64(t.movie_duration - t.empty_edit);
        w.u64(0);
        w.u32(0x0001_0000);
        w.close();
        w.close();
    }

    w.open(b"mdia");
    w.open_full(b"mdhd", u8::from(long), 0);
    if long {
        w.u64(0);
        w.u64(0);
        w.u32(track.timescale());
        w.u64(t.media_duration);
    } else {
        w.u32(0);
        w.u32(0);
        w.u32(track.timescale());
        w.u32(t.media_duration as u32);
    }
    w.u16(0x55c4); // language "und"
    w.u16(0);
    w.close();
    w.open_full(b"hdlr", 0, 0);
    w.u32(0);
    w.bytes(if video { b"vide" } else { b"soun" });
    w.zeros(12);
    w.bytes(if video {
        b"VideoHandler\0"
    } else {
        b"SoundHandler\0"
    });
    w.close();

    w.open(b"minf");
    if video {
        w.open_full(b"vmhd", 0, 1);
        w.zeros(8);
    } else {
        w.open_full(b"smhd", 0, 0);
        w.zeros(4);
    }
    w.close();
    w.open(b"dinf");
    w.open_full(b"dref", 0, 0);
    w.u32(1);
    w.open_full(b"url ", 0, 1); // media is in this file
    w.close();
    w.close();
    w.close();

    w.open(b"stbl");
    w.open_full(b"stsd", 0, 0);
    w.u32(t.entries.len() as u32);
    for entry in t.entries {
        write_sample_entry(w, entry);
    }
    w.close();
    stbl_tables(w);
    w.close(); // stbl
    w.close(); // minf
    w.close(); // mdia
    w.close(); // trak
}

fn write_sample_entry(w: &mut BoxWriter, track: &Track) {
    match track.codec() {
        Codec::H264 => write_visual_entry(w, b"avc1", b"avcC", track),
        Codec::H265 => write_visual_entry(w, b"hvc1", b"hvcC", track),
        Codec::Aac => write_mp4a_entry(w, track),
    }
}

fn write_visual_entry(w: &mut BoxWriter, fourcc: &[u8; 4], config: &[u8; 4], track: &Track) {
    w.open(fourcc);
    w.zeros(6);
    w.u16(1); // data_reference_index
    w.zeros(16); // pre_defined, reserved
    w.u16(track.width());
    w.u16(track.height());
    w.u32(0x0048_0000); // 72 dpi
    w.u32(0x0048_0000);
    w.u32(0);
    w.u16(1); // frame_count
    w.zeros(32); // compressorname
    w.u16(0x0018); // depth
    w.u16(0xffff); // pre_defined = -1
    w.open(config);
    w.bytes(track.config());
    w.close();
    w.close();
}

fn write_mp4a_entry(w: &mut BoxWriter, track: &Track) {
    w.open(b"mp4a");
    w.zeros(6);
    w.u16(1); // data_reference_index
    w.zeros(8);
    w.u16(track.channels().max(1));
    w.u16(16); // sample size
    w.u32(0);
    // 16.16 rate; rates above 65535 Hz do not fit and are conventionally written as 0.
    w.u32(if track.sample_rate() <= 0xffff {
        track.sample_rate() << 16
    } else {
        0
    });

    w.open_full(b"esds", 0, 0);
    let asc = track.config();
    let dsi_len = asc.len();
    let dcd_len = 13 + descriptor_len_size(dsi_len) + 1 + dsi_len;
    let es_len = 3 + descriptor_len_size(dcd_len) + 1 + dcd_len + 3;
    write_descriptor_header(w, 0x03, es_len); // ES_Descriptor
    w.u16(0); // ES_ID
    w.u8(0); // flags
    write_descriptor_header(w, 0x04, dcd_len); // DecoderConfigDescriptor
    w.u8(0x40); // MPEG-4 audio
    w.u8(0x15); // audio stream, upstream 0, reserved 1
    w.zeros(3); // bufferSizeDB
    w.u32(0); // maxBitrate
    w.u32(0); // avgBitrate
    write_descriptor_header(w, 0x05, dsi_len); // DecoderSpecificInfo
    w.bytes(asc);
    write_descriptor_header(w, 0x06, 1); // SLConfigDescriptor
    w.u8(0x02);
    w.close();
    w.close();
}

fn descriptor_len_size(len: usize) -> usize {
    match len {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        _ => 4,
    }
}

fn write_descriptor_header(w: &mut BoxWriter, tag: u8, len: usize) {
    w.u8(tag);
    let n = descriptor_len_size(len);
    for i in (0..n).rev() {
        let more = if i > 0 { 0x80 } else { 0 };
        w.u8(more | ((len >> (7 * i)) & 0x7f) as u8);
    }
}
