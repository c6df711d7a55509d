//! The stream lifecycle under a paused tokio clock: a scripted source (the demo clip's video,
//! played in virtual time, or failures) is injected through the hub's opener, so restart
//! backoff, idle expiry, token reset and restarts with a discontinuity are checked to the
//! millisecond without waiting for them. The real-camera tests (`tests/lifecycle.rs`) stay.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use sluice::config::{HlsConfig, IngestConfig, StreamConfig};
use sluice::hub::{Hub, Policy, Settings, Stream, StreamState};
use sluice::source::{
    DEMO_CLIP, ErrorKind, EventSource, Opener, Source, SourceError, SourceEvent, SourceOptions,
    SourceSpec,
};
use sluice_media::demux::demux;
use sluice_media::{Frame, Track, TrackKind};
use tokio::time::Instant;

/// What the scripted camera does at each open.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Refuses the connection.
    Fail,
    /// Plays this long (virtual time), then ends.
    Play(Duration),
}

/// An opener that follows a script (failing once the script is used up) and records when
/// each open happened.
struct Script {
    steps: Mutex<VecDeque<Step>>,
    opens: Mutex<Vec<Instant>>,
    video: (Track, Vec<Frame>),
}

impl Script {
    fn new(steps: &[Step]) -> Arc<Script> {
        let file = demux(&Bytes::from_static(DEMO_CLIP)).expect("the demo clip demuxes");
        let v = file
            .tracks
            .iter()
            .position(|t| t.kind() == TrackKind::Video)
            .expect("a video track");
        let frames = file.frames[v]
            .iter()
            .map(|f| Frame {
                track: 0,
                ..f.clone()
            })
            .collect();
        Arc::new(Script {
            steps: Mutex::new(steps.iter().copied().collect()),
            opens: Mutex::new(Vec::new()),
            video: (file.tracks[v].clone(), frames),
        })
    }

    fn opens(&self) -> Vec<Instant> {
        self.opens.lock().unwrap().clone()
    }
}

impl Opener for Script {
    fn open<'a>(
        &'a self,
        _: &'a SourceSpec,
        _: &'a SourceOptions,
    ) -> BoxFuture<'a, Result<(Source, Vec<Track>), SourceError>> {
        self.opens.lock().unwrap().push(Instant::now());
        let step = self.steps.lock().unwrap().pop_front().unwrap_or(Step::Fail);
        Box::pin(async move {
            match step {
                Step::Fail => Err(SourceError::new(ErrorKind::Refused, "scripted refusal")),
                Step::Play(length) => {
                    let (track, frames) = self.video.clone();
                    let player = Player {
                        period: track.timescale() as f64,
                        frames,
                        next: 0,
                        laps: 0,
                        start: Instant::now(),
                        end: Instant::now() + length,
                    };
                    Ok((Source::Custom(Box::new(player)), vec![track]))
                }
            }
        })
    }
}

/// The demo clip's video in virtual real time, looped, until `end`.
struct Player {
    period: f64,
    frames: Vec<Frame>,
    next: usize,
    laps: i64,
    start: Instant,
    end: Instant,
}

impl EventSource for Player {
    fn next(&mut self) -> BoxFuture<'_, Result<SourceEvent, SourceError>> {
        Box::pin(async move {
            let lap = self.frames.last().map_or(1, |f| f.dts + 1_000);
            let mut frame = self.frames[self.next].clone();
            frame.dts += self.laps * lap;
            frame.pts += self.laps * lap;
            self.next += 1;
            if self.next == self.frames.len() {
                self.next = 0;
                self.laps += 1;
            }
            let at = self.start + Duration::from_secs_f64(frame.dts as f64 / self.period);
            if at >= self.end {
                tokio::time::sleep_until(self.end).await;
                return Err(SourceError::new(ErrorKind::Ended, "scripted end"));
            }
            tokio::time::sleep_until(at).await;
            Ok(SourceEvent::Frame(frame))
        })
    }
}

fn settings() -> Settings {
    Settings {
        hls: HlsConfig {
            idle_timeout: 30.0,
            ..HlsConfig::default()
        },
        ingest: IngestConfig {
            restart_increment: 10.0,
            restart_reset: 300.0,
            ..IngestConfig::default()
        },
    }
}

fn stream(script: &Arc<Script>, preload: bool) -> (Arc<Hub>, Arc<Stream>) {
    let hub = Hub::with_opener(settings(), Arc::clone(script) as Arc<dyn Opener>);
    let config = StreamConfig {
        preload,
        ..StreamConfig::new("builtin:demo")
    };
    let stream = hub.add_stream("cam", config).expect("a valid stream");
    (hub, stream)
}

/// Waits (in virtual time) until `ok` holds for the stream's status.
async fn until(stream: &Stream, ok: impl Fn(&sluice::hub::Status) -> bool) -> Instant {
    for _ in 0..100_000 {
        if ok(&stream.status()) {
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the stream never got there: {:?}", stream.status());
}

/// Waits until the stream has `n` complete segments (when idle countdowns start, with the
/// default `startup_segments` of 3).
async fn segments(stream: &Stream, n: usize) -> Instant {
    stream
        .tap()
        .media()
        .wait_for(Duration::from_secs(3600), |ring| {
            (ring.segments().iter().filter(|s| s.is_complete()).count() >= n).then_some(())
        })
        .await
        .expect("segments");
    Instant::now()
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

#[tokio::test(start_paused = true)]
async fn a_failing_preloaded_camera_is_retried_with_a_growing_backoff() {
    let script = Script::new(&[]);
    let (hub, stream) = stream(&script, true);
    until(&stream, |s| s.runs >= 4).await;
    let opens = script.opens();
    let gaps: Vec<f64> = opens.windows(2).map(|w| secs(w[1] - w[0])).collect();
    assert_eq!(gaps[..3], [10.0, 20.0, 30.0], "{gaps:?}");
    let status = stream.status();
    assert_eq!(status.last_error.map(|e| e.kind), Some(ErrorKind::Refused));
    assert!(!status.available);
    let restarts = stream
        .counters
        .restarts
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(restarts >= 3, "{restarts}");
    hub.shutdown().await;
    assert_eq!(stream.status().state, StreamState::Idle);
}

#[tokio::test(start_paused = true)]
async fn a_run_longer_than_restart_reset_resets_the_backoff() {
    // Fail, fail (backoff 10, then 20), a 400 s run (longer than restart_reset), then failures.
    let script = Script::new(&[Step::Fail, Step::Fail, Step::Play(Duration::from_secs(400))]);
    let (hub, stream) = stream(&script, true);
    until(&stream, |s| s.runs >= 5).await;
    let opens = script.opens();
    let gaps: Vec<f64> = opens.windows(2).map(|w| secs(w[1] - w[0])).collect();
    // The run ended 400 s after its open; the retry came 10 s later, not 30.
    assert_eq!(gaps[..4], [10.0, 20.0, 410.0, 20.0], "{gaps:?}");
    hub.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_idle_viewer_stops_the_worker_and_voids_the_epoch() {
    let hour = Step::Play(Duration::from_secs(3600));
    let script = Script::new(&[hour, hour]);
    let (hub, stream) = stream(&script, false);
    assert_eq!(stream.status().state, StreamState::Idle, "not started yet");
    let demand = Arc::clone(stream.tap().demand());
    let epoch = demand.epoch();
    let lease = demand.lease("hls", Policy::Idle(Duration::from_secs(30)));
    // Countdowns start once the stream can start players (three complete segments).
    let playable = segments(&stream, 3).await;
    // A media fetch 20 s later re-arms the countdown.
    tokio::time::sleep(Duration::from_secs(20)).await;
    lease.touch();
    let touched = Instant::now();
    let stopped = until(&stream, |s| s.state == StreamState::Idle).await;
    let idle_after = secs(stopped - touched);
    assert!((30.0..30.1).contains(&idle_after), "{idle_after}");
    assert!(secs(touched - playable) >= 20.0);
    assert!(!lease.is_active());
    assert_eq!(
        demand.epoch(),
        epoch + 1,
        "every lease is idle: the HLS token is void"
    );
    // The viewer's next request wakes the lease and starts the stream again.
    lease.wake();
    until(&stream, |s| s.state == StreamState::Running).await;
    assert_eq!(script.opens().len(), 2);
    hub.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn preload_keeps_the_worker_when_every_lease_is_idle() {
    let script = Script::new(&[Step::Play(Duration::from_secs(3600))]);
    let (hub, stream) = stream(&script, true);
    let demand = Arc::clone(stream.tap().demand());
    let lease = demand.lease("hls", Policy::Idle(Duration::from_secs(30)));
    let epoch = demand.epoch();
    segments(&stream, 3).await;
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(!lease.is_active());
    assert_eq!(demand.epoch(), epoch + 1, "the token is reset");
    assert_eq!(stream.status().state, StreamState::Running, "preloaded");
    assert_eq!(script.opens().len(), 1);
    hub.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_held_lease_keeps_the_stream_until_it_is_dropped() {
    let script = Script::new(&[Step::Play(Duration::from_secs(3600))]);
    let (hub, stream) = stream(&script, false);
    let demand = Arc::clone(stream.tap().demand());
    let viewer = demand.lease("hls", Policy::Idle(Duration::from_secs(30)));
    let clip = demand.lease("recording", Policy::Held);
    let playable = segments(&stream, 3).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!viewer.is_active(), "the viewer went idle");
    assert_eq!(demand.active_kinds(), ["recording"]);
    assert_eq!(
        stream.status().state,
        StreamState::Running,
        "the recording holds it"
    );
    let epoch = demand.epoch();
    drop(clip);
    let stopped = until(&stream, |s| s.state == StreamState::Idle).await;
    assert!(secs(stopped - playable) < 61.0);
    assert_eq!(demand.epoch(), epoch + 1);
    hub.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_fixed_hold_starts_a_cold_stream_and_ends_after_its_time() {
    let script = Script::new(&[Step::Play(Duration::from_secs(3600))]);
    let (hub, stream) = stream(&script, false);
    stream
        .tap()
        .demand()
        .hold_for("snapshot", Duration::from_secs(15));
    let playable = segments(&stream, 3).await;
    let stopped = until(&stream, |s| s.state == StreamState::Idle).await;
    let held = secs(stopped - playable);
    assert!((15.0..15.1).contains(&held), "{held}");
    hub.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_camera_restart_continues_the_timeline_after_a_discontinuity() {
    let script = Script::new(&[
        Step::Play(Duration::from_secs(8)),
        Step::Play(Duration::from_secs(3600)),
    ]);
    let (hub, stream) = stream(&script, true);
    until(&stream, |s| s.runs >= 2 && s.state == StreamState::Running).await;
    let opens = script.opens();
    assert_eq!(
        secs(opens[1] - opens[0]),
        18.0,
        "8 s of play, then the 10 s backoff"
    );
    segments(&stream, 7).await;
    let (ids, sequences): (Vec<u64>, Vec<u64>) = {
        let ring = stream.tap().media().ring();
        ring.segments()
            .iter()
            .map(|s| (s.discontinuity, s.sequence))
            .unzip()
    };
    assert!(
        ids.windows(2).filter(|w| w[0] != w[1]).count() == 1,
        "one discontinuity, at the restart: {ids:?}"
    );
    assert!(
        sequences.windows(2).all(|w| w[1] == w[0] + 1),
        "{sequences:?}"
    );
    hub.shutdown().await;
}
