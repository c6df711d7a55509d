//! The `sluice` command line.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice::config::{Config, StateFileSetting, StreamConfig};
use sluice::hub::{Hub, Settings};
use sluice::outputs::Outputs;
use sluice::outputs::clips::Clips;
use sluice::source::{SourceOptions, Transport};
use sluice::state_file::{self, Changes, StateFile};
use tracing::info;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Camera stream server: cameras to LL-HLS, clips and snapshots"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the configured streams (or the built-in demo stream without a config).
    Serve {
        /// YAML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on (overrides `server.listen`); port 0 picks a free port.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Record a clip from a source without a server (Ctrl-C ends it early, keeping the clip).
    Record(RecordArgs),
    /// Write a JPEG of a source's next keyframe, without a server.
    Snapshot(SnapshotArgs),
    /// Connect to a source, print its tracks and codecs, and exit (non-zero on failure).
    Probe {
        /// Source URL: rtsp://[user:pass@]host/path, file:///path.mp4 or builtin:demo.
        url: String,
        /// RTSP transport.
        #[arg(long, value_enum, default_value = "auto")]
        transport: TransportArg,
        /// Seconds allowed for connecting.
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
    },
}

/// Arguments of `sluice record`.
#[derive(clap::Args)]
struct SnapshotArgs {
    /// Source URL: rtsp://[user:pass@]host/path, file:///path.mp4 or builtin:demo.
    url: String,
    /// Where to write the JPEG (replaced if it exists).
    #[arg(long)]
    output: PathBuf,
    /// Width in pixels (the height follows the aspect ratio unless given too).
    #[arg(long)]
    width: Option<u32>,
    /// Height in pixels.
    #[arg(long)]
    height: Option<u32>,
    /// EXIF orientation 1..=8 to apply.
    #[arg(long, default_value_t = 1)]
    orientation: u8,
    /// RTSP transport.
    #[arg(long, value_enum, default_value = "auto")]
    transport: TransportArg,
}

#[derive(clap::Args)]
struct RecordArgs {
    /// Source URL: rtsp://[user:pass@]host/path, file:///path.mp4 or builtin:demo.
    url: String,
    /// The MP4 file to write.
    #[arg(long)]
    output: PathBuf,
    /// Seconds to record.
    #[arg(long)]
    duration: f64,
    /// Seconds before the start to include: the source runs this long first.
    #[arg(long, default_value_t = 0.0)]
    lookback: f64,
    /// Replace the output file if it exists (otherwise an existing file is an error).
    #[arg(long)]
    overwrite: bool,
    /// RTSP transport.
    #[arg(long, value_enum, default_value = "auto")]
    transport: TransportArg,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum TransportArg {
    Auto,
    Tcp,
    Udp,
}

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run());
    // Work stuck in the blocking pool (a read on a hung mount) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line with the whole cause chain; no backtrace for a user's mistake.
            // Credentials hidden: a config or source error may echo a URL.
            eprintln!("error: {}", sluice::redact::redact_text(&format!("{e:#}")));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(sluice::redact::RedactingStderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match Cli::parse().command {
        Command::Serve { config, listen } => serve(config, listen).await,
        Command::Probe {
            url,
            transport,
            timeout,
        } => probe(&url, transport, timeout).await,
        Command::Record(args) => record(args).await,
        Command::Snapshot(args) => snapshot(args).await,
    }
}

impl TransportArg {
    fn transport(self) -> Transport {
        match self {
            TransportArg::Auto => Transport::Auto,
            TransportArg::Tcp => Transport::Tcp,
            TransportArg::Udp => Transport::Udp,
        }
    }
}

async fn record(args: RecordArgs) -> anyhow::Result<()> {
    use sluice::outputs::clips::RecordRequest;
    use sluice::outputs::clips::path::PathError;
    let request = RecordRequest {
        duration: args.duration,
        lookback: args.lookback,
    };
    request.validate()?;
    let output = args
        .output
        .to_str()
        .context("the output path is not UTF-8")?;
    let hub = Hub::new(Settings::default());
    let clips = Clips::new(&hub, None);
    // Before the source starts: an existing file or a bad path fails at once.
    let target = clips
        .target(output, args.overwrite, "record")
        .await
        .map_err(|e| match e {
            PathError::Exists { path } => anyhow::anyhow!(
                "{} already exists: pass --overwrite to replace it",
                path.display()
            ),
            e => e.into(),
        })?;
    let config = StreamConfig {
        preload: true,
        transport: args.transport.transport(),
        ..StreamConfig::new(args.url.clone())
    };
    let startup = std::time::Duration::from_secs_f64(
        config.connect_timeout + config.stall_timeout + args.lookback.max(0.0) + 5.0,
    );
    let stream = hub.add_stream("record", config)?;
    // Run the source until the lookback is in memory (or at least until media flows).
    let want = args.lookback.max(0.0);
    let buffered = stream
        .tap()
        .media()
        .wait_for(startup, |ring| {
            let buffered: f64 = ring.segments().iter().map(|s| s.duration_so_far()).sum();
            (ring.live_edge().is_some() && buffered >= want).then_some(())
        })
        .await;
    if buffered.is_none() && stream.tap().media().ring().live_edge().is_none() {
        let error = stream
            .status()
            .last_error
            .map(|e| e.to_string())
            .unwrap_or_else(|| "the source produced no media".into());
        hub.shutdown().await;
        anyhow::bail!("{}: {error}", sluice::redact::redact(&args.url));
    }
    let path = target.path().to_path_buf();
    let lookback = clips.record(&stream, target, request).await?;
    eprintln!(
        "recording {:.1} s (with {lookback:.1} s before now) to {}",
        args.duration,
        path.display()
    );
    tokio::select! {
        _ = Clips::wait(&stream, false) => {}
        _ = tokio::signal::ctrl_c() => Clips::wait(&stream, true).await,
    }
    let result = Clips::recent(&stream).pop();
    hub.shutdown().await;
    match result {
        Some(r) if r.error.is_none() => {
            println!(
                "{} ({:.1} s, {} bytes)",
                r.path.display(),
                r.seconds,
                r.bytes
            );
            Ok(())
        }
        Some(r) => anyhow::bail!(r.error.unwrap_or_default()),
        None => anyhow::bail!("the recording did not finish"),
    }
}

async fn snapshot(args: SnapshotArgs) -> anyhow::Result<()> {
    use sluice::outputs::snapshot::picture::SnapshotSize;
    let hub = Hub::new(Settings::default());
    let config = StreamConfig {
        transport: args.transport.transport(),
        orientation: args.orientation,
        ..StreamConfig::new(args.url.clone())
    };
    let stream = hub.add_stream("snapshot", config)?;
    let size = SnapshotSize {
        width: args.width,
        height: args.height,
    };
    let taken = sluice::outputs::snapshot::Snapshots::take(&stream, size, false).await;
    let error = stream.status().last_error;
    hub.shutdown().await;
    let (jpeg, _) = taken.map_err(|e| match error {
        Some(source) => anyhow::anyhow!("{}: {e}: {source}", sluice::redact::redact(&args.url)),
        None => anyhow::anyhow!("{}: {e}", sluice::redact::redact(&args.url)),
    })?;
    std::fs::write(&args.output, &jpeg.bytes)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    println!(
        "{} ({}x{}, {} bytes)",
        args.output.display(),
        jpeg.width,
        jpeg.height,
        jpeg.bytes.len()
    );
    Ok(())
}

async fn probe(url: &str, transport: TransportArg, timeout: f64) -> anyhow::Result<()> {
    if !(timeout.is_finite() && timeout > 0.0) {
        anyhow::bail!("--timeout must be a positive number of seconds");
    }
    let options = SourceOptions {
        transport: transport.transport(),
        connect_timeout: std::time::Duration::from_secs_f64(timeout),
        ..SourceOptions::default()
    };
    match sluice::probe::probe(url, &options).await {
        Ok(probe) => {
            print!("{probe}");
            Ok(())
        }
        Err(e) => {
            let kind = serde_json::to_value(e.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            eprintln!("error ({kind}): {e}");
            std::process::exit(2);
        }
    }
}

async fn serve(config_path: Option<PathBuf>, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let mut config = match &config_path {
        Some(path) => Config::load(path)?,
        None => demo_config(),
    };
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    let hub = Hub::new(Settings {
        hls: config.hls,
        ingest: config.ingest,
    });
    let outputs = std::sync::Arc::new(Outputs::new(&hub, &config));
    let state_path = resolve_state_file(&config.server.state_file, config_path.as_deref())?;
    let streams = match &state_path {
        Some(path) => with_saved_changes(&config.streams, path)?,
        None => config.streams.clone(),
    };
    for (name, stream) in &streams {
        hub.add_stream(name, stream.clone())
            .with_context(|| format!("stream {name:?}"))?;
    }
    let state_file =
        state_path.map(|path| std::sync::Arc::new(StateFile::new(path, config.streams.clone())));
    sluice::server::connections::raise_open_file_limit();
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    info!("listening on http://{addr}");
    println!(
        "Sluice is serving {} stream(s). Web UI: http://{addr}/",
        streams.len()
    );
    if config_path.is_none() {
        println!("Demo stream API: http://{addr}/api/streams");
    }
    sluice::server::serve(
        listener,
        hub,
        outputs,
        &config.server,
        state_file,
        shutdown_signal(),
    )
    .await?;
    info!("shut down cleanly");
    Ok(())
}

/// Where streams changed through the API are saved; `None` when `server.state_file` is null.
fn resolve_state_file(
    setting: &StateFileSetting,
    config_path: Option<&std::path::Path>,
) -> anyhow::Result<Option<PathBuf>> {
    let path = state_file::resolve(setting, config_path)?;
    match &path {
        Some(p) => info!(path = %p.display(), "streams changed through the API are saved here"),
        None => info!("server.state_file is null: streams changed through the API are not saved"),
    }
    Ok(path)
}

/// The config file's streams with the state file's changes applied, each change logged.
fn with_saved_changes(
    base: &BTreeMap<String, StreamConfig>,
    path: &std::path::Path,
) -> anyhow::Result<BTreeMap<String, StreamConfig>> {
    let changes = Changes::load(path)?;
    for name in &changes.removed {
        if base.contains_key(name) {
            info!(stream = %name, "removed through the API (saved in {}): not started", path.display());
        }
    }
    for name in changes.streams.keys() {
        if base.contains_key(name) {
            info!(
                stream = %name,
                "changed through the API: the entry saved in {} replaces the config file's",
                path.display()
            );
        } else {
            info!(stream = %name, "added through the API (saved in {})", path.display());
        }
    }
    Ok(changes.apply(base))
}

fn demo_config() -> Config {
    let mut config = Config::default();
    config.streams.insert(
        "demo".to_string(),
        StreamConfig {
            preload: true,
            ..StreamConfig::new("builtin:demo")
        },
    );
    config
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    info!("shutdown signal received");
}
