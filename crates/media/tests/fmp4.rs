//! The fMP4 writer's output parsed back with an independent parser (mp4-atom).

use bytes::Bytes;
use mp4_atom::{Any, Codec as Entry, Decode, Encode, Ftyp, Moof, Moov};
use sluice_media::Track;
use sluice_media::codec::{aac, avc};
use sluice_media::mp4::fragment::{Sample, TrackRun, write_fragment};
use sluice_media::mp4::{Orientation, write_init};

fn h264() -> Track {
    let sps = [0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50];
    let pps = [0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
    let avcc = avc::avcc_from_parameter_sets(&sps, &pps).unwrap();
    Track::h264(Bytes::from(avcc), 90000, 1280, 720).unwrap()
}

fn aac_lc() -> Track {
    Track::aac(Bytes::copy_from_slice(&aac::lc_config(48000, 2).unwrap())).unwrap()
}

fn decode_all(mut buf: &[u8]) -> Vec<Any> {
    let mut atoms = Vec::new();
    while !buf.is_empty() {
        atoms.push(Any::decode(&mut buf).expect("valid box"));
    }
    atoms
}

#[test]
fn init_segment_parses_with_both_tracks() {
    let video = h264();
    let audio = aac_lc();
    let init = write_init(&[video.clone(), audio.clone()], Orientation::NORMAL);
    let atoms = decode_all(&init);
    assert_eq!(atoms.len(), 2);
    let Any::Ftyp(Ftyp { major_brand, .. }) = &atoms[0] else {
        panic!("first box is not ftyp: {:?}", atoms[0]);
    };
    assert_eq!(major_brand, &b"iso5".into());
    let Any::Moov(moov) = &atoms[1] else {
        panic!("second box is not moov");
    };
    assert_eq!(moov.trak.len(), 2);
    let mvex = moov.mvex.as_ref().expect("mvex");
    assert_eq!(mvex.trex.len(), 2);
    assert_eq!(
        mvex.trex.iter().map(|t| t.track_id).collect::<Vec<_>>(),
        [1, 2]
    );

    let v = &moov.trak[0];
    assert_eq!(v.tkhd.track_id, 1);
    assert_eq!(v.mdia.mdhd.timescale, 90000);
    assert_eq!(v.mdia.hdlr.handler, b"vide".into());
    match &v.mdia.minf.stbl.stsd.codecs[0] {
        Entry::Avc1(avc1) => {
            assert_eq!((avc1.visual.width, avc1.visual.height), (1280, 720));
            assert_eq!(avc1.avcc.avc_profile_indication, 0x64);
            assert_eq!(avc1.avcc.avc_level_indication, 0x1f);
            assert_eq!(avc1.avcc.sequence_parameter_sets.len(), 1);
            assert_eq!(avc1.avcc.picture_parameter_sets.len(), 1);
        }
        other => panic!("video sample entry is {other:?}"),
    }

    let a = &moov.trak[1];
    assert_eq!(a.tkhd.track_id, 2);
    assert_eq!(a.mdia.mdhd.timescale, 48000);
    assert_eq!(a.mdia.hdlr.handler, b"soun".into());
    match &a.mdia.minf.stbl.stsd.codecs[0] {
        Entry::Mp4a(mp4a) => {
            assert_eq!(mp4a.audio.channel_count, 2);
            let dec = &mp4a.esds.es_desc.dec_config;
            assert_eq!(dec.object_type_indication, 0x40);
            let dsi = dec.dec_specific.as_ref().expect("AudioSpecificConfig");
            assert_eq!(dsi.raw, audio.config().to_vec());
        }
        other => panic!("audio sample entry is {other:?}"),
    }
    assert_eq!(video.codec_string(), "avc1.64001f");
    assert_eq!(audio.codec_string(), "mp4a.40.2");
}

#[test]
fn orientation_sets_the_video_matrix_only() {
    let init = write_init(&[h264(), aac_lc()], Orientation::new(6).unwrap());
    let atoms = decode_all(&init);
    let Any::Moov(moov) = &atoms[1] else { panic!() };
    let m = &moov.trak[0].tkhd.matrix;
    // ROTATE_LEFT: a b / c d = 0 -1 / 1 0 in 16.16.
    assert_eq!((m.a, m.b, m.c, m.d), (0, -65536, 65536, 0));
    let audio = &moov.trak[1].tkhd.matrix;
    assert_eq!((audio.a, audio.d), (65536, 65536));
}

fn sample(len: usize, fill: u8, duration: u32, cto: i32, keyframe: bool) -> Sample {
    Sample {
        duration,
        cto,
        keyframe,
        data: Bytes::from(vec![fill; len]),
    }
}

#[test]
fn fragment_has_a_traf_per_track_and_offsets_that_point_at_the_payloads() {
    let video = TrackRun {
        track_id: 1,
        video: true,
        base_decode_time: 900_000,
        samples: vec![
            sample(100, 0xa1, 3600, 0, true),
            sample(40, 0xa2, 3600, 0, false),
        ],
    };
    let audio = TrackRun {
        track_id: 2,
        video: false,
        base_decode_time: 480_000,
        samples: vec![
            sample(7, 0xb1, 1024, 0, true),
            sample(9, 0xb2, 1024, 0, true),
        ],
    };
    let fragment = write_fragment(42, &[video, audio]);
    // Zero copy: the header, then each payload as its own chunk.
    assert_eq!(fragment.chunks.len(), 5);
    let bytes = fragment.to_vec();
    assert_eq!(bytes.len(), fragment.size);

    let mut buf = &bytes[..];
    let moof = Moof::decode(&mut buf).expect("moof");
    let mdat_start = bytes.len() - buf.len();
    assert_eq!(&bytes[mdat_start + 4..mdat_start + 8], b"mdat");
    assert_eq!(moof.mfhd.sequence_number, 42);
    assert_eq!(moof.traf.len(), 2);

    let expect = [
        (
            1u32,
            900_000u64,
            vec![(100usize, 0xa1u8, 3600u32), (40, 0xa2, 3600)],
        ),
        (2, 480_000, vec![(7, 0xb1, 1024), (9, 0xb2, 1024)]),
    ];
    for (traf, (id, base, samples)) in moof.traf.iter().zip(expect) {
        assert_eq!(traf.tfhd.track_id, id);
        assert!(traf.tfhd.default_base_is_moof);
        assert_eq!(traf.tfdt.as_ref().unwrap().base_media_decode_time, base);
        let trun = &traf.trun[0];
        let mut offset = trun.data_offset.expect("data offset") as usize;
        let entries: Vec<_> = trun.samples.iter().collect();
        assert_eq!(entries.len(), samples.len());
        for (entry, (len, fill, duration)) in entries.iter().zip(samples) {
            assert_eq!(entry.duration, Some(duration));
            assert_eq!(entry.size, Some(len as u32));
            assert!(bytes[offset..offset + len].iter().all(|&b| b == fill));
            offset += len;
        }
        if id == 1 {
            assert_eq!(
                entries[0].flags,
                Some(0x0200_0000),
                "keyframe is a sync sample"
            );
            assert_eq!(entries[1].flags, Some(0x0101_0000), "non-key is non-sync");
            assert_eq!(
                entries[0].cts, None,
                "no composition offsets without B-frames"
            );
        }
    }
}

#[test]
fn negative_composition_offsets_use_trun_version_1() {
    let run = TrackRun {
        track_id: 1,
        video: true,
        base_decode_time: 0,
        samples: vec![
            sample(10, 1, 3000, 3000, true),
            sample(10, 2, 3000, -3000, false),
        ],
    };
    let bytes = write_fragment(1, &[run]).to_vec();
    let moof = Moof::decode(&mut &bytes[..]).unwrap();
    let ctos: Vec<_> = moof.traf[0].trun[0].samples.iter().map(|e| e.cts).collect();
    assert_eq!(ctos, [Some(3000), Some(-3000)]);
    // The trun's version byte.
    let trun_at = bytes.windows(4).position(|w| w == b"trun").unwrap();
    assert_eq!(bytes[trun_at + 4], 1);
}

#[test]
fn demo_clip_demuxes_into_tracks_and_frames() {
    let clip = Bytes::from_static(include_bytes!("../../sluice/assets/demo.mp4"));
    let file = sluice_media::demux::demux(&clip).unwrap();
    assert_eq!(file.tracks.len(), 2);
    assert_eq!(file.tracks[0].codec_string(), "avc1.4d401e");
    assert_eq!(file.tracks[1].codec_string(), "mp4a.40.2");
    assert_eq!(file.frames[0].len(), 200);
    assert_eq!(file.frames[0].iter().filter(|f| f.keyframe).count(), 8);
    assert!((file.duration_secs - 8.0).abs() < 1e-9);
    // The AAC priming frame sits before zero after the edit list is applied.
    assert_eq!(file.frames[1][0].dts, -1024);
    assert_eq!(file.frames[1][1].dts, 0);
    // The init we write from these tracks parses too.
    let init = write_init(&file.tracks, Orientation::NORMAL);
    assert!(matches!(decode_all(&init)[1], Any::Moov(Moov { .. })));
}

#[test]
fn garbage_files_are_errors_not_panics() {
    use sluice_media::demux::demux;
    assert!(demux(&Bytes::from_static(b"")).is_err());
    assert!(demux(&Bytes::from_static(b"\0\0\0\x08moov")).is_err());
    // Found by fuzz/fuzz_targets/demux.rs: a 64-bit box size near 2^64 overflowed the walk.
    assert!(matches!(
        demux(&Bytes::from_static(
            b"\0\0\0\x08ftyp\0\0\0\x01free\xff\xff\xff\xff\xff\xff\xff\xff"
        )),
        Err(sluice_media::demux::DemuxError::NoMoov)
    ));
    let clip = include_bytes!("../../sluice/assets/demo.mp4");
    // Truncations and bit flips across the moov never panic.
    for cut in (0..clip.len()).step_by(clip.len() / 97) {
        let _ = demux(&Bytes::copy_from_slice(&clip[..cut]));
    }
    let mut flipped = clip.to_vec();
    for i in (0..4000.min(flipped.len())).step_by(7) {
        flipped[i] ^= 0x5a;
        let _ = demux(&Bytes::copy_from_slice(&flipped));
        flipped[i] ^= 0x5a;
    }
}

/// The demo clip with its `moov` replaced by `edit(moov)`, written after the `mdat` (a `free`
/// box holds the old `moov`'s place, so the chunk offsets stay valid).
fn demo_with_moov(edit: impl FnOnce(&mut Moov)) -> Bytes {
    let demo = include_bytes!("../../sluice/assets/demo.mp4");
    let mut buf = &demo[..];
    let ftyp = Ftyp::decode(&mut buf).unwrap();
    let mut moov = Moov::decode(&mut buf).unwrap();
    edit(&mut moov);
    let mut out = Vec::new();
    ftyp.encode(&mut out).unwrap();
    let hole = demo.len() - buf.len() - out.len();
    out.extend_from_slice(&(hole as u32).to_be_bytes());
    out.extend_from_slice(b"free");
    out.resize(out.len() + hole - 8, 0);
    out.extend_from_slice(buf); // the mdat
    moov.encode(&mut out).unwrap();
    Bytes::from(out)
}

/// Found by `fuzz/fuzz_targets/demux.rs` (the 28-byte input is in `fuzz/regressions/demux/`):
/// mp4-atom 0.17 decodes a version-0 `sgpd` with 600 million entries out of 20 bytes, taking
/// gigabytes of memory; the demuxer defuses such boxes before decoding.
#[test]
fn a_version_0_sample_group_box_is_skipped_not_decoded() {
    use sluice_media::demux::{DemuxError, demux};
    let tiny = b"\0\0\0\0moov\0\0\0\0sgpd\0\x20ftnpis$din";
    assert!(matches!(
        demux(&Bytes::from_static(tiny)),
        Err(DemuxError::Invalid(_))
    ));
    // In a real file, next to the audio's version-1 `sgpd` (kept), the bomb is skipped.
    let mut bomb = vec![0, 0, 0, 20];
    bomb.extend_from_slice(b"sgpd");
    bomb.extend_from_slice(&[0, 0, 0, 0]); // version 0
    bomb.extend_from_slice(b"xxxx"); // an unknown grouping type
    bomb.extend_from_slice(&u32::MAX.to_be_bytes()); // entry_count
    let clip = include_bytes!("../../sluice/assets/demo.mp4");
    let plain = sluice_media::demux::demux(&Bytes::from_static(clip)).unwrap();
    let patched = demux(&Bytes::from(insert_into_first_stbl(clip, &bomb))).unwrap();
    assert_eq!(patched.frames, plain.frames);
}

/// `file` with `child` appended to the first track's `stbl`, the sizes of its ancestors grown
/// to match, and every chunk offset moved by as much (the demo's `moov` precedes its `mdat`).
fn insert_into_first_stbl(file: &[u8], child: &[u8]) -> Vec<u8> {
    let grow = child.len() as u32;
    let mut out = file.to_vec();
    let moov = child_box(&out, None, b"moov");
    let stbl_of = |out: &[u8], trak| {
        let mdia = child_box(out, Some(trak), b"mdia");
        let minf = child_box(out, Some(mdia), b"minf");
        (mdia, minf, child_box(out, Some(minf), b"stbl"))
    };
    let mut at = moov + 8;
    while at < moov + box_size(&out, moov) {
        if &out[at + 4..at + 8] == b"trak" {
            let stco = child_box(&out, Some(stbl_of(&out, at).2), b"stco");
            let count = box_size(&out, stco + 12);
            for i in 0..count {
                let entry = stco + 16 + 4 * i;
                let offset = box_size(&out, entry) as u32 + grow;
                out[entry..entry + 4].copy_from_slice(&offset.to_be_bytes());
            }
        }
        at += box_size(&out, at);
    }
    let trak = child_box(&out, Some(moov), b"trak");
    let (mdia, minf, stbl) = stbl_of(&out, trak);
    let stbl_end = stbl + box_size(&out, stbl);
    for ancestor in [moov, trak, mdia, minf, stbl] {
        let size = box_size(&out, ancestor) as u32 + grow;
        out[ancestor..ancestor + 4].copy_from_slice(&size.to_be_bytes());
    }
    out.splice(stbl_end..stbl_end, child.iter().copied());
    out
}

/// The big-endian u32 at `at` (a box's size, or a table entry).
fn box_size(buf: &[u8], at: usize) -> usize {
    u32::from_be_bytes(buf[at..at + 4].try_into().unwrap()) as usize
}

/// The offset of the first box of kind `kind` in `parent`'s body (or at the top level).
fn child_box(buf: &[u8], parent: Option<usize>, kind: &[u8; 4]) -> usize {
    let mut at = parent.map_or(0, |p| p + 8);
    while &buf[at + 4..at + 8] != kind {
        at += box_size(buf, at);
    }
    at
}

/// Chunk offsets near `u64::MAX` and an edit list that starts after the end of its track are
/// errors, not overflows.
#[test]
fn hostile_sample_tables_are_errors_not_overflows() {
    use sluice_media::demux::{DemuxError, demux};
    let huge_offsets = demo_with_moov(|moov| {
        let stbl = &mut moov.trak[0].mdia.minf.stbl;
        let chunks = stbl.stco.take().unwrap().entries.len();
        stbl.co64 = Some(mp4_atom::Co64 {
            entries: vec![u64::MAX - 10; chunks],
        });
    });
    assert!(matches!(
        demux(&huge_offsets),
        Err(DemuxError::SampleTable {
            what: "sample beyond the end of the file",
            ..
        })
    ));
    let late_edit = demo_with_moov(|moov| {
        let trak = &mut moov.trak[0];
        trak.mdia.minf.stbl.ctts = Some(mp4_atom::Ctts {
            entries: vec![mp4_atom::CttsEntry {
                sample_count: u32::MAX,
                sample_offset: -3000,
            }],
        });
        trak.edts = Some(mp4_atom::Edts {
            elst: Some(mp4_atom::Elst {
                entries: vec![mp4_atom::ElstEntry {
                    segment_duration: 1000,
                    media_time: Some(i64::MAX as u64),
                    media_rate: 1.into(),
                }],
            }),
        });
    });
    assert!(matches!(
        demux(&late_edit),
        Err(DemuxError::SampleTable {
            what: "edit list starts after the track's end",
            ..
        })
    ));
    // The rebuilt file itself is fine.
    assert!(demux(&demo_with_moov(|_| {})).is_ok());
}
