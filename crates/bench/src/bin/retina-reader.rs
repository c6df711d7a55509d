//! `retina-reader`: the floor of Sluice's RTSP stack, retina reading K cameras and nothing
//! else, for a warm-up and a measurement window; prints a JSON summary with frame arrival delay
//! percentiles (see `sluice_bench::reader`).
//!
//! ```text
//! retina-reader --base rtsp://127.0.0.1:8554/ --cameras 8 --warmup 10 --duration 60
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sluice_bench::{Window, reader};
use url::Url;

#[derive(Parser)]
#[command(about = "Minimal retina frame reader for K RTSP cameras")]
struct Args {
    /// Base URL; cameras are `{base}cam0` … (as `rtsp-sim` serves them).
    #[arg(long, conflicts_with = "urls")]
    base: Option<Url>,
    /// Cameras under `--base`.
    #[arg(long, default_value_t = 1)]
    cameras: usize,
    /// Explicit camera URLs, comma-separated, instead of `--base`.
    #[arg(long, value_delimiter = ',')]
    urls: Vec<Url>,
    /// The measurement window.
    #[command(flatten)]
    window: Window,
    /// Runtime threads: 0 one per core (as `sluice serve`), 1 single-threaded, N that many.
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let urls: Vec<Url> = match &args.base {
        Some(base) => {
            let joined: Result<Vec<Url>, _> = (0..args.cameras)
                .map(|i| base.join(&format!("cam{i}")))
                .collect();
            match joined {
                Ok(u) => u,
                Err(e) => {
                    eprintln!("retina-reader: bad --base: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        None => args.urls.clone(),
    };
    if urls.is_empty() || !args.window.is_valid() {
        eprintln!(
            "retina-reader: give --base or --urls, and positive --duration, --warmup, --linger"
        );
        return ExitCode::FAILURE;
    }
    let runtime = match sluice_bench::runtime(args.threads) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("retina-reader: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let window = Duration::from_secs_f64(args.window.duration);
    let summary = runtime.block_on(async {
        let (measure_from, measure_until, until) = args.window.bounds();
        let tasks: Vec<_> = urls
            .into_iter()
            .map(|u| tokio::spawn(reader::read_camera(u, (measure_from, measure_until), until)))
            .collect();
        let mut cameras = Vec::with_capacity(tasks.len());
        for t in tasks {
            match t.await {
                Ok(stats) => cameras.push(stats),
                Err(e) => eprintln!("retina-reader: a reader failed: {e}"),
            }
        }
        reader::summary(&cameras, window)
    });
    println!("{summary}");
    ExitCode::SUCCESS
}
