//! `hls-viewers`: M LL-HLS viewers per stream in one process, for a warm-up and a measurement
//! window; prints a JSON summary (see `sluice_bench::viewer` for what is measured).
//!
//! ```text
//! hls-viewers --server 127.0.0.1:8640 --streams cam0,cam1 --per-stream 1 --warmup 10 --duration 60
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sluice_bench::Window;
use sluice_bench::viewer::{self, ViewerConfig, ViewerStats};
use tokio::time::Instant;

#[derive(Parser)]
#[command(about = "LL-HLS viewers following Sluice's playlists and fetching every part")]
struct Args {
    /// Sluice's HTTP address.
    #[arg(long)]
    server: SocketAddr,
    /// Streams to watch, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    streams: Vec<String>,
    /// Viewers per stream.
    #[arg(long, default_value_t = 1)]
    per_stream: usize,
    /// The measurement window.
    #[command(flatten)]
    window: Window,
    /// Spread the viewers' starts over this many seconds (within the warm-up).
    #[arg(long, default_value_t = 2.0)]
    spread: f64,
    /// Do not ask for gzipped playlists.
    #[arg(long)]
    no_gzip: bool,
    /// Runtime threads: 1 single-threaded, 0 one per core, N that many.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !(args.window.is_valid() && args.spread >= 0.0) {
        eprintln!("hls-viewers: --warmup, --duration, --spread and --linger must be positive");
        return ExitCode::FAILURE;
    }
    let runtime = match sluice_bench::runtime(args.threads) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hls-viewers: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut summary = runtime.block_on(async {
        let start = Instant::now();
        let (measure_from, measure_until, until) = args.window.bounds();
        let total = args.streams.len() * args.per_stream;
        let mut tasks = Vec::with_capacity(total);
        for i in 0..total {
            let config = ViewerConfig {
                server: args.server,
                stream: args.streams[i % args.streams.len()].clone(),
                gzip: !args.no_gzip,
                measure_from,
                measure_until,
                until,
            };
            let delay = Duration::from_secs_f64(args.spread * i as f64 / total.max(1) as f64);
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep_until(start + delay).await;
                viewer::run(config).await
            }));
        }
        let mut all = ViewerStats::default();
        for t in tasks {
            match t.await {
                Ok(stats) => all.merge(stats),
                Err(e) => eprintln!("hls-viewers: a viewer failed: {e}"),
            }
        }
        let mut summary = all.summary();
        summary["window_s"] = args.window.duration.into();
        summary
    });
    summary["streams"] = args.streams.len().into();
    summary["per_stream"] = args.per_stream.into();
    println!("{summary}");
    ExitCode::SUCCESS
}
