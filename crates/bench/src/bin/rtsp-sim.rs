//! `rtsp-sim`: many RTSP cameras from one process, replaying one MP4 clip with real pacing.
//!
//! ```text
//! rtsp-sim --clip clip.mp4 --cameras 8 [--port 0] [--threads 1]
//! ```
//!
//! Prints `READY rtsp://127.0.0.1:PORT/` on stdout once listening (cameras are `cam0`,
//! `cam1`, … under it), and on SIGINT/SIGTERM a JSON summary of what it sent. See
//! `sluice_bench::sim`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use clap::Parser;
use serde_json::json;
use sluice_bench::clip::{Clip, ClipOptions};
use sluice_bench::sim::{Sim, serve};

#[derive(Parser)]
#[command(about = "RTSP camera simulator: K cameras replaying one MP4 clip")]
struct Args {
    /// The clip: a progressive MP4 with H.264 video (and optionally AAC audio), starting with a
    /// keyframe.
    #[arg(long)]
    clip: std::path::PathBuf,
    /// Cameras served, at /cam0 … /cam{K-1}.
    #[arg(long, default_value_t = 1)]
    cameras: usize,
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Runtime threads: 1 single-threaded, 0 one per core, N that many.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Largest RTP payload; larger NAL units become FU-A fragments.
    #[arg(long, default_value_t = 1400)]
    max_payload: usize,
    /// Do not repeat SPS/PPS in band before keyframes (they stay in the SDP).
    #[arg(long)]
    no_inband_parameter_sets: bool,
    /// Write each RTP packet on its own instead of one write per access unit.
    #[arg(long)]
    packet_writes: bool,
    /// Do not put the send time in each video frame (an SEI message, see
    /// `sluice_bench::wallclock`).
    #[arg(long)]
    no_wallclock: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let data = match std::fs::read(&args.clip) {
        Ok(d) => Bytes::from(d),
        Err(e) => {
            eprintln!("rtsp-sim: cannot read {}: {e}", args.clip.display());
            return ExitCode::FAILURE;
        }
    };
    let options = ClipOptions {
        max_payload: args.max_payload,
        inband_parameter_sets: !args.no_inband_parameter_sets,
        wallclock_sei: !args.no_wallclock,
    };
    let clip = match Clip::from_mp4(&data, options) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("rtsp-sim: {}: {e}", args.clip.display());
            return ExitCode::FAILURE;
        }
    };
    drop(data);
    let runtime = match sluice_bench::runtime(args.threads) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rtsp-sim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        // Timelines start now, inside the runtime.
        let sim = Sim::new(Arc::clone(&clip), args.cameras, args.packet_writes);
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        let addr = listener.local_addr()?;
        eprintln!(
            "rtsp-sim: {} cameras, clip {}x{} {:.2} fps, {:.0} kbit/s, {} stream(s), {:.2} s loop",
            args.cameras,
            clip.video.width,
            clip.video.height,
            clip.video_fps(),
            clip.bitrate() / 1000.0,
            clip.streams(),
            clip.period.as_secs_f64()
        );
        println!("READY rtsp://{addr}/");
        tokio::select! {
            () = serve(listener, Arc::clone(&sim)) => {}
            () = sluice_bench::terminated() => {}
        }
        Ok::<_, std::io::Error>(sim.stats.summary())
    });
    let mut summary = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rtsp-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    summary["clip"] = json!({
        "width": clip.video.width,
        "height": clip.video.height,
        "video_fps": clip.video_fps(),
        "frames_per_sec": clip.frames_per_sec(),
        "bitrate": clip.bitrate().round(),
        "audio": clip.audio.is_some(),
        "loop_s": clip.period.as_secs_f64(),
    });
    println!("{summary}");
    ExitCode::SUCCESS
}
