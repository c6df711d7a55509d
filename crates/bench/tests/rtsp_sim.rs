//! The camera simulator's output is valid RTSP/RTP: ffprobe decodes it without an error, and
//! retina reads it with continuous timestamps across the clip's loop and each frame's send time.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use futures_util::StreamExt;
use retina::client::{
    PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions, Transport,
};
use retina::codec::CodecItem;
use sluice_bench::wallclock;

/// Kills the simulator when the test ends, however it ends.
struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A 1 s clip (two 0.5 s GOPs, 25 fps, AAC at 16 kHz), so a short read crosses loop ends.
fn make_clip(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("clip.mp4");
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=25",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=16000",
            "-t",
            "1",
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "12",
            "-keyint_min",
            "12",
        ])
        .args([
            "-sc_threshold",
            "0",
            "-bf",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-b:v",
            "300k",
        ])
        .args(["-c:a", "aac", "-b:a", "32k", "-ac", "1"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs (scripts/test.sh installs it)");
    assert!(status.success(), "ffmpeg could not make the clip");
    path
}

fn start_sim(clip: &std::path::Path) -> (Sim, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rtsp-sim"))
        .args(["--cameras", "2", "--clip"])
        .arg(clip)
        .stdout(Stdio::piped())
        .spawn()
        .expect("rtsp-sim starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let sim = Sim(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("READY line");
    let base = line
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .trim()
        .to_string();
    (sim, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_decodes_it_and_retina_reads_continuous_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let clip = make_clip(dir.path());
    let (_sim, base) = start_sim(&clip);
    let url = format!("{base}cam1");

    // ffprobe decodes three seconds (three loops) of camera 1 while retina reads it too.
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-rtsp_transport", "tcp", "-count_frames"])
        .args([
            "-read_intervals",
            "%+3",
            "-show_entries",
            "stream=codec_name,nb_read_frames",
        ])
        .args(["-of", "compact", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffprobe runs");

    let mut session = Session::describe(url.parse().unwrap(), SessionOptions::default())
        .await
        .expect("DESCRIBE");
    let streams: Vec<(String, String)> = session
        .streams()
        .iter()
        .map(|s| (s.media().to_string(), s.encoding_name().to_string()))
        .collect();
    assert_eq!(
        streams,
        [
            ("video".into(), "h264".into()),
            ("audio".into(), "mpeg4-generic".into())
        ]
    );
    for i in 0..2 {
        let options =
            SetupOptions::default().transport(Transport::Tcp(TcpTransportOptions::default()));
        session.setup(i, options).await.expect("SETUP");
    }
    let mut demuxed = session
        .play(PlayOptions::default())
        .await
        .expect("PLAY")
        .demuxed()
        .expect("demuxed");
    // 60 video frames: 2.4 loops of the 1 s clip.
    let mut video = Vec::new();
    let mut audio = 0;
    while video.len() < 60 {
        match demuxed
            .next()
            .await
            .expect("the session goes on")
            .expect("no error")
        {
            CodecItem::VideoFrame(f) => {
                if video.is_empty() {
                    assert!(f.is_random_access_point(), "a session starts at a keyframe");
                }
                let sent = wallclock::find(f.data()).expect("each frame carries its send time");
                let age = wallclock::ms_since(sent, std::time::SystemTime::now());
                assert!((0.0..60_000.0).contains(&age), "sent {age} ms ago");
                video.push(f.timestamp().elapsed());
            }
            CodecItem::AudioFrame(_) => audio += 1,
            _ => {}
        }
    }
    let steps: Vec<i64> = video.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        steps.iter().all(|&d| d == 3600),
        "video timestamps step by 1/25 s: {steps:?}"
    );
    assert!(audio > 0, "audio frames arrive");

    let out = probe.wait_with_output().expect("ffprobe ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("ffprobe: {stdout}");
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffprobe errors: {stderr}"
    );
    let frames: Vec<u64> = stdout
        .lines()
        .filter_map(|l| l.rsplit("nb_read_frames=").next()?.trim().parse().ok())
        .collect();
    assert_eq!(frames.len(), 2, "both streams decoded: {stdout}");
    assert!(frames.iter().all(|&n| n > 0), "frames decoded: {stdout}");
}
