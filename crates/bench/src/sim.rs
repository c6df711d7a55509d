//! The RTSP camera simulator: `cameras` cameras at `rtsp://HOST:PORT/cam{i}` served by one
//! process, replaying the shared [`Clip`] with real pacing over RTP interleaved in the RTSP
//! connection (TCP; UDP is refused with 461, so clients that try TCP first, like Sluice's
//! `auto`, ffmpeg's `-rtsp_transport tcp` and retina, use it).
//!
//! Each camera is live, like a real one with one encoder: it has its own timeline (the clip
//! looped, each camera at another phase so that cameras do not send in step), run by one task
//! while anyone watches. A session joins at the camera's next keyframe, and every session of a
//! camera gets each access unit at the same moment: Sluice, ffmpeg and the retina reader are fed
//! by the same wakeup. The camera task broadcasts which access unit is due; each connection's
//! task stamps its own sequence numbers, timestamps (random start, continuous across loops) and
//! SSRC and writes everything due in one `write` (or one per packet, as an option). RTCP sender
//! reports go out with the first keyframe and then every five seconds; receiver reports are
//! read and ignored. Requests are parsed with `rtsp-types`.
//!
//! What it costs is visible from outside (`/proc`); what it did is in [`SimStats`]: sessions,
//! access units and bytes sent, units dropped for clients that did not read, and how late the
//! camera tasks woke against their schedule (whether the simulator itself kept up).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BytesMut};
use rtsp_types::headers::{self, RtpLowerTransport, Transport, Transports};
use rtsp_types::{Message, Method, Request, Response, StatusCode, Url, Version};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;

use crate::clip::{Clip, ClipEvent};
use crate::rtp::{self, Header};
use crate::sdp;
use crate::stats::Histogram;
use crate::wallclock;

/// The largest request (head and body) a client may send.
const MAX_REQUEST: usize = 64 * 1024;
/// Session timeout announced in the `Session` header, seconds.
const SESSION_TIMEOUT: u32 = 60;
/// Access units a session may fall behind its camera before it misses some.
const TICK_BACKLOG: usize = 256;
/// Time between a session's RTCP sender reports (sent with the next keyframe).
const REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// What the simulator did, for its JSON summary.
#[derive(Default)]
pub struct SimStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Sessions that reached PLAY.
    pub sessions: AtomicU64,
    /// Sessions playing now.
    pub playing: AtomicU64,
    /// Access units (video and audio frames) sent, over all sessions.
    pub frames: AtomicU64,
    /// Access units a session missed because it did not read fast enough (it then waits for
    /// the next keyframe, as from a camera that drops frames for a slow client).
    pub dropped: AtomicU64,
    /// Bytes written to clients (RTP with interleaved framing, and RTSP responses).
    pub bytes: AtomicU64,
    /// Requests answered with an error status.
    pub errors: AtomicU64,
    /// Microseconds between an access unit's scheduled time and the camera's wakeup to send it.
    pub lateness_us: Histogram,
}

impl SimStats {
    /// The JSON summary.
    pub fn summary(&self) -> Value {
        let p = |q| self.lateness_us.percentile(q) as f64 / 1000.0;
        json!({
            "connections": self.connections.load(Ordering::Relaxed),
            "sessions": self.sessions.load(Ordering::Relaxed),
            "playing": self.playing.load(Ordering::Relaxed),
            "frames": self.frames.load(Ordering::Relaxed),
            "dropped": self.dropped.load(Ordering::Relaxed),
            "bytes": self.bytes.load(Ordering::Relaxed),
            "errors": self.errors.load(Ordering::Relaxed),
            "send_lateness_ms": { "p50": p(50.0), "p99": p(99.0), "p999": p(99.9), "max": p(100.0) },
        })
    }
}

/// A position in a camera's schedule: the loop and the index of the access unit in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tick {
    loops: u64,
    index: usize,
}

/// One camera's timeline, shared by all its sessions.
struct Camera {
    /// Start of the camera's loop 0.
    epoch: Instant,
    /// Every access unit as it falls due.
    ticks: broadcast::Sender<Tick>,
    /// Whether the task that sends the ticks runs (it stops when nobody listens).
    running: Mutex<bool>,
}

/// The simulator's shared state.
pub struct Sim {
    clip: Arc<Clip>,
    cameras: Vec<Camera>,
    packet_writes: bool,
    /// Counters.
    pub stats: SimStats,
}

impl Sim {
    /// `cameras` cameras replaying `clip`, each at its own phase of the loop (spread evenly, so
    /// cameras do not send in step). With `packet_writes`, each RTP packet is written on its own
    /// (one `write` per packet, as some cameras do) instead of one `write` per access unit.
    pub fn new(clip: Arc<Clip>, cameras: usize, packet_writes: bool) -> Arc<Sim> {
        let now = Instant::now();
        let period = clip.period.as_secs_f64();
        let cameras = (0..cameras)
            .map(|i| {
                // The golden-ratio sequence spreads any number of cameras over the loop.
                let phase = (i as f64 * 0.618_033_988_75).fract() * period;
                Camera {
                    epoch: now
                        .checked_sub(Duration::from_secs_f64(phase + period))
                        .unwrap_or(now),
                    ticks: broadcast::channel(TICK_BACKLOG).0,
                    running: Mutex::new(false),
                }
            })
            .collect();
        Arc::new(Sim {
            clip,
            cameras,
            packet_writes,
            stats: SimStats::default(),
        })
    }

    /// Cameras served.
    pub fn cameras(&self) -> usize {
        self.cameras.len()
    }

    /// When `tick` falls due on `camera`'s timeline.
    fn due(&self, camera: usize, tick: Tick) -> Instant {
        let at = self
            .clip
            .events
            .get(tick.index)
            .map_or(Duration::ZERO, |e| e.at);
        let offset =
            (self.clip.period.as_nanos() as u64).saturating_mul(tick.loops) + at.as_nanos() as u64;
        self.cameras[camera].epoch + Duration::from_nanos(offset)
    }

    /// The first access unit due at or after `t` on `camera`'s timeline.
    fn position_at(&self, camera: usize, t: Instant) -> Tick {
        let clip = &self.clip;
        let elapsed = t.saturating_duration_since(self.cameras[camera].epoch);
        let period = clip.period.as_nanos().max(1);
        let loops = (elapsed.as_nanos() / period) as u64;
        let within = Duration::from_nanos((elapsed.as_nanos() % period) as u64);
        let index = clip.events.partition_point(|e| e.at < within);
        self.normalize(Tick { loops, index })
    }

    fn normalize(&self, tick: Tick) -> Tick {
        if tick.index >= self.clip.events.len() {
            Tick {
                loops: tick.loops + 1,
                index: 0,
            }
        } else {
            tick
        }
    }

    fn advance(&self, tick: Tick) -> Tick {
        self.normalize(Tick {
            loops: tick.loops,
            index: tick.index + 1,
        })
    }

    /// The first access unit from `tick` on for which `pred` holds (the clip has a keyframe and
    /// at least one event of each stream, so the search ends within a loop).
    fn find(&self, mut tick: Tick, pred: impl Fn(&ClipEvent) -> bool) -> Tick {
        for _ in 0..=self.clip.events.len() {
            if pred(&self.clip.events[tick.index]) {
                break;
            }
            tick = self.advance(tick);
        }
        tick
    }

    /// Listens to `camera`'s ticks, starting its task if it is not running.
    fn subscribe(self: &Arc<Sim>, camera: usize) -> broadcast::Receiver<Tick> {
        let c = &self.cameras[camera];
        let mut running = c.running.lock().unwrap_or_else(|e| e.into_inner());
        let rx = c.ticks.subscribe();
        if !*running {
            *running = true;
            tokio::spawn(Arc::clone(self).run_camera(camera));
        }
        rx
    }

    /// Sends `camera`'s ticks as they fall due, until nobody listens.
    async fn run_camera(self: Arc<Sim>, camera: usize) {
        let c = &self.cameras[camera];
        let mut tick = self.position_at(camera, Instant::now());
        loop {
            tokio::time::sleep_until(self.due(camera, tick)).await;
            let now = Instant::now();
            loop {
                let due = self.due(camera, tick);
                if due > now {
                    break;
                }
                let late = now.saturating_duration_since(due).as_micros() as u64;
                self.stats.lateness_us.record(late);
                let _ = c.ticks.send(tick);
                tick = self.advance(tick);
            }
            let mut running = c.running.lock().unwrap_or_else(|e| e.into_inner());
            if c.ticks.receiver_count() == 0 {
                *running = false;
                return;
            }
        }
    }
}

/// Accepts connections until the listener fails for good.
pub async fn serve(listener: TcpListener, sim: Arc<Sim>) {
    loop {
        match listener.accept().await {
            Ok((sock, _)) => {
                sim.stats.connections.fetch_add(1, Ordering::Relaxed);
                let _ = sock.set_nodelay(true);
                tokio::spawn(Connection::new(Arc::clone(&sim)).run(sock));
            }
            // Out of descriptors, or a connection reset before accept: wait and go on.
            Err(e) => {
                eprintln!("rtsp-sim: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One stream set up in a session.
#[derive(Clone, Copy)]
struct Setup {
    channel: u8,
    ssrc: u32,
    /// The next packet's sequence number.
    sequence: u16,
    /// The first packet's sequence number and timestamp (announced in `RTP-Info`).
    first_sequence: u16,
    first_ts: u32,
    /// The timestamp of the camera's loop 0 (set at PLAY so that the first packet has
    /// `first_ts`).
    base_ts: u32,
    /// Packets and payload octets sent, for sender reports.
    packets: u32,
    octets: u32,
}

/// A playing session: the camera's ticks, and whether its first keyframe went out.
struct Playback {
    ticks: broadcast::Receiver<Tick>,
    started: bool,
    /// When the last RTCP sender reports went out.
    last_report: Option<Instant>,
}

struct Connection {
    sim: Arc<Sim>,
    session_id: String,
    camera: Option<usize>,
    setups: Vec<Option<Setup>>,
    playback: Option<Playback>,
    input: BytesMut,
    output: Vec<u8>,
    /// Where each RTP packet in `output` ends.
    packet_ends: Vec<usize>,
    closing: bool,
}

impl Connection {
    fn new(sim: Arc<Sim>) -> Connection {
        let streams = sim.clip.streams();
        Connection {
            sim,
            session_id: format!("{:016x}", random()),
            camera: None,
            setups: vec![None; streams],
            playback: None,
            input: BytesMut::with_capacity(4096),
            output: Vec::with_capacity(16 * 1024),
            packet_ends: Vec::new(),
            closing: false,
        }
    }

    async fn run(mut self, mut sock: TcpStream) {
        let _ = self.serve(&mut sock).await;
        if self.playback.is_some() {
            self.sim.stats.playing.fetch_sub(1, Ordering::Relaxed);
        }
    }

    async fn serve(&mut self, sock: &mut TcpStream) -> std::io::Result<()> {
        loop {
            let playing = self.playback.is_some();
            tokio::select! {
                read = sock.read_buf(&mut self.input) => {
                    if read? == 0 {
                        return Ok(());
                    }
                    self.output.clear();
                    self.handle_input();
                    if !self.output.is_empty() {
                        sock.write_all(&self.output).await?;
                        self.count_bytes();
                    }
                    if self.closing {
                        return Ok(());
                    }
                }
                tick = next_tick(&mut self.playback), if playing => {
                    self.output.clear();
                    self.packet_ends.clear();
                    let mut tick = tick;
                    // Everything already due goes out in one write.
                    loop {
                        match tick {
                            Ok(t) => self.packetize(t),
                            Err(TryRecvError::Lagged(n)) => {
                                self.sim.stats.dropped.fetch_add(n, Ordering::Relaxed);
                                if let Some(p) = self.playback.as_mut() {
                                    p.started = false;
                                }
                            }
                            Err(_) => break,
                        }
                        tick = match self.playback.as_mut() {
                            Some(p) => p.ticks.try_recv(),
                            None => break,
                        };
                    }
                    if self.sim.packet_writes {
                        let mut start = 0;
                        for &end in &self.packet_ends {
                            sock.write_all(&self.output[start..end]).await?;
                            start = end;
                        }
                    } else if !self.output.is_empty() {
                        sock.write_all(&self.output).await?;
                    }
                    self.count_bytes();
                }
            }
        }
    }

    fn count_bytes(&self) {
        let n = self.output.len() as u64;
        self.sim.stats.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Appends the RTP packets of the access unit at `tick` to the output buffer.
    fn packetize(&mut self, tick: Tick) {
        let clip = Arc::clone(&self.sim.clip);
        let Some(event) = clip.events.get(tick.index) else {
            return;
        };
        let Some(playback) = self.playback.as_mut() else {
            return;
        };
        if !playback.started {
            if !event.keyframe {
                return;
            }
            playback.started = true;
        }
        // Sender reports for every stream at the first keyframe and then every few seconds, as
        // cameras send them: they pair each stream's RTP clock with the wall clock.
        if event.keyframe
            && playback
                .last_report
                .is_none_or(|t| t.elapsed() >= REPORT_INTERVAL)
        {
            playback.last_report = Some(Instant::now());
            if let Some(camera) = self.camera {
                let due = self.sim.due(camera, tick);
                let time = SystemTime::now() - Instant::now().saturating_duration_since(due);
                for (stream, setup) in self.setups.iter().enumerate() {
                    let Some(setup) = setup else { continue };
                    let report = rtp::SenderReport {
                        ssrc: setup.ssrc,
                        time,
                        rtp_time: setup
                            .base_ts
                            .wrapping_add(rtp_ticks_at(&clip, stream, tick.loops, event.at)),
                        packets: setup.packets,
                        octets: setup.octets,
                    };
                    rtp::put_sender_report(&mut self.output, setup.channel.wrapping_add(1), report);
                    self.packet_ends.push(self.output.len());
                }
            }
        }
        let Some(setup) = self.setups[event.stream].as_mut() else {
            return;
        };
        self.sim.stats.frames.fetch_add(1, Ordering::Relaxed);
        let timestamp = setup
            .base_ts
            .wrapping_add(rtp_ticks(&clip, event, tick.loops));
        let payload_type = if event.stream == 0 {
            sdp::VIDEO_PT
        } else {
            sdp::AUDIO_PT
        };
        let sei = event
            .wallclock_at
            .map(|at| (at, wallclock::encode(wallclock::now_micros())));
        let last = event.payloads.len() - 1;
        for (i, payload) in event.payloads.iter().enumerate() {
            let mut put = |payload: &[u8], marker: bool| {
                let header = Header {
                    payload_type,
                    marker,
                    sequence: setup.sequence,
                    timestamp,
                    ssrc: setup.ssrc,
                };
                rtp::put_interleaved(&mut self.output, setup.channel, header, payload);
                self.packet_ends.push(self.output.len());
                setup.sequence = setup.sequence.wrapping_add(1);
                setup.packets = setup.packets.wrapping_add(1);
                setup.octets = setup.octets.wrapping_add(payload.len() as u32);
            };
            if let Some((_, nal)) = sei.as_ref().filter(|(at, _)| *at == i) {
                put(nal, false);
            }
            put(payload, i == last);
        }
    }

    /// Answers every complete request in the input buffer.
    fn handle_input(&mut self) {
        loop {
            let parsed = Message::<Vec<u8>>::parse(&self.input[..]);
            match parsed {
                Ok((message, consumed)) => {
                    self.input.advance(consumed);
                    // Interleaved data from the client (RTCP receiver reports) is ignored.
                    if let Message::Request(request) = message {
                        self.handle(&request);
                    }
                    if self.closing {
                        return;
                    }
                }
                Err(rtsp_types::ParseError::Incomplete(_)) if self.input.len() < MAX_REQUEST => {
                    return;
                }
                Err(_) => {
                    self.respond_error(StatusCode::BadRequest, None);
                    self.closing = true;
                    return;
                }
            }
        }
    }

    fn handle(&mut self, request: &Request<Vec<u8>>) {
        let cseq = request
            .header(&headers::CSEQ)
            .map(|v| v.as_str().to_owned());
        let cseq = cseq.as_deref();
        match request.method() {
            Method::Options => {
                let r = response(StatusCode::Ok, cseq).header(
                    headers::PUBLIC,
                    "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER",
                );
                self.write(r.empty());
            }
            Method::Describe => match self.camera_of(request) {
                Some((camera, base)) => {
                    let sdp = sdp::render(&self.sim.clip, camera as u64 + 1);
                    let r = response(StatusCode::Ok, cseq)
                        .header(headers::CONTENT_TYPE, "application/sdp")
                        .header(headers::CONTENT_BASE, base);
                    self.write(r.build(sdp.into_bytes()));
                }
                None => self.respond_error(StatusCode::NotFound, cseq),
            },
            Method::Setup => self.setup(request, cseq),
            Method::Play => self.play(request, cseq),
            Method::Pause => {
                if self.playback.take().is_some() {
                    self.sim.stats.playing.fetch_sub(1, Ordering::Relaxed);
                }
                let r = self.session_response(cseq);
                self.write(r.empty());
            }
            Method::Teardown => {
                let r = self.session_response(cseq);
                self.write(r.empty());
                self.closing = true;
            }
            Method::GetParameter | Method::SetParameter => {
                let r = self.session_response(cseq);
                self.write(r.empty());
            }
            _ => self.respond_error(StatusCode::NotImplemented, cseq),
        }
    }

    /// Starts the session at the camera's next keyframe: each stream's timestamps are based so
    /// that its first packet carries the `rtptime` announced in `RTP-Info`.
    fn play(&mut self, request: &Request<Vec<u8>>, cseq: Option<&str>) {
        let Some(camera) = self.camera else {
            return self.respond_error(StatusCode::SessionNotFound, cseq);
        };
        if !self.session_matches(request) {
            return self.respond_error(StatusCode::SessionNotFound, cseq);
        }
        if self.playback.is_none() {
            let sim = Arc::clone(&self.sim);
            let ticks = sim.subscribe(camera);
            let start = sim.find(sim.position_at(camera, Instant::now()), |e| e.keyframe);
            for (stream, setup) in self.setups.iter_mut().enumerate() {
                if let Some(setup) = setup {
                    let first = sim.find(start, |e| e.stream == stream);
                    let offset = rtp_ticks(&sim.clip, &sim.clip.events[first.index], first.loops);
                    setup.base_ts = setup.first_ts.wrapping_sub(offset);
                }
            }
            self.playback = Some(Playback {
                ticks,
                started: false,
                last_report: None,
            });
            sim.stats.sessions.fetch_add(1, Ordering::Relaxed);
            sim.stats.playing.fetch_add(1, Ordering::Relaxed);
        }
        let base = request.request_uri().map(|u| base_of(u, self.camera));
        let infos: Vec<String> = self
            .setups
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let (s, base) = (s.as_ref()?, base.as_ref()?);
                Some(format!(
                    "url={base}{};seq={};rtptime={}",
                    sdp::control(i),
                    s.first_sequence,
                    s.first_ts
                ))
            })
            .collect();
        let mut r = self
            .session_response(cseq)
            .header(headers::RANGE, "npt=0.000-");
        if !infos.is_empty() {
            r = r.header(headers::RTP_INFO, infos.join(","));
        }
        self.write(r.empty());
    }
    fn setup(&mut self, request: &Request<Vec<u8>>, cseq: Option<&str>) {
        let Some(url) = request.request_uri() else {
            return self.respond_error(StatusCode::BadRequest, cseq);
        };
        let Some((camera, stream)) = parse_path(url.path(), self.sim.cameras()) else {
            return self.respond_error(StatusCode::NotFound, cseq);
        };
        let stream = match stream {
            Some(s) if s < self.setups.len() => s,
            None if self.setups.len() == 1 => 0,
            _ => return self.respond_error(StatusCode::NotFound, cseq),
        };
        if self.camera.is_some_and(|c| c != camera) || self.playback.is_some() {
            return self.respond_error(StatusCode::MethodNotValidInThisState, cseq);
        }
        if request.header(&headers::SESSION).is_some() && !self.session_matches(request) {
            return self.respond_error(StatusCode::SessionNotFound, cseq);
        }
        let transports = request.typed_header::<Transports>().ok().flatten();
        let channel = transports.as_ref().and_then(|ts| {
            ts.iter().find_map(|t| match t {
                Transport::Rtp(rtp) if rtp.lower_transport == Some(RtpLowerTransport::Tcp) => {
                    Some(rtp.params.interleaved.map_or(2 * stream as u8, |(c, _)| c))
                }
                _ => None,
            })
        });
        let Some(channel) = channel else {
            return self.respond_error(StatusCode::UnsupportedTransport, cseq);
        };
        let r = random();
        let setup = Setup {
            channel,
            ssrc: r as u32,
            sequence: (r >> 32) as u16,
            first_sequence: (r >> 32) as u16,
            first_ts: (r >> 48) as u32 | ((r as u32) << 16),
            base_ts: 0,
            packets: 0,
            octets: 0,
        };
        self.camera = Some(camera);
        self.setups[stream] = Some(setup);
        let transport = format!(
            "RTP/AVP/TCP;unicast;interleaved={}-{};ssrc={:08X};mode=\"PLAY\"",
            channel,
            channel.wrapping_add(1),
            setup.ssrc
        );
        let r = self
            .session_response(cseq)
            .header(headers::TRANSPORT, transport);
        self.write(r.empty());
    }

    fn session_matches(&self, request: &Request<Vec<u8>>) -> bool {
        request
            .header(&headers::SESSION)
            .is_some_and(|v| v.as_str().split(';').next().map(str::trim) == Some(&self.session_id))
    }

    fn session_response(&self, cseq: Option<&str>) -> rtsp_types::ResponseBuilder {
        response(StatusCode::Ok, cseq).header(
            headers::SESSION,
            format!("{};timeout={SESSION_TIMEOUT}", self.session_id),
        )
    }

    /// The camera a request names, and its `Content-Base`.
    fn camera_of(&self, request: &Request<Vec<u8>>) -> Option<(usize, String)> {
        let url = request.request_uri()?;
        let (camera, _) = parse_path(url.path(), self.sim.cameras())?;
        Some((camera, base_of(url, Some(camera))))
    }

    fn respond_error(&mut self, status: StatusCode, cseq: Option<&str>) {
        self.sim.stats.errors.fetch_add(1, Ordering::Relaxed);
        self.write(response(status, cseq).empty());
    }

    fn write(&mut self, r: Response<impl AsRef<[u8]>>) {
        // Writing into a Vec cannot fail.
        let _ = r.write(&mut self.output);
    }
}

/// The next tick of a playing session (never resolves without one).
async fn next_tick(playback: &mut Option<Playback>) -> Result<Tick, TryRecvError> {
    let Some(p) = playback.as_mut() else {
        return std::future::pending().await;
    };
    match p.ticks.recv().await {
        Ok(t) => Ok(t),
        Err(RecvError::Lagged(n)) => Err(TryRecvError::Lagged(n)),
        Err(RecvError::Closed) => Err(TryRecvError::Closed),
    }
}

/// The RTP timestamp of `stream` at time `at` of loop `loops`, from the camera's loop 0.
fn rtp_ticks_at(clip: &Clip, stream: usize, loops: u64, at: Duration) -> u32 {
    let period = u64::from(clip.period_ticks[stream]);
    let within = (at.as_secs_f64() * f64::from(clip.clock_rates[stream])).round() as u32;
    (period.wrapping_mul(loops) as u32).wrapping_add(within)
}

/// The RTP timestamp of `event` in loop `loops`, from the camera's loop 0.
fn rtp_ticks(clip: &Clip, event: &ClipEvent, loops: u64) -> u32 {
    let period = u64::from(clip.period_ticks[event.stream]);
    (period.wrapping_mul(loops) as u32).wrapping_add(event.rtp_offset)
}

fn response(status: StatusCode, cseq: Option<&str>) -> rtsp_types::ResponseBuilder {
    let r = Response::builder(Version::V1_0, status).header(headers::SERVER, "sluice-bench");
    match cseq {
        Some(c) => r.header(headers::CSEQ, c),
        None => r,
    }
}

/// `rtsp://host:port/cam{i}/`, the base stream controls are relative to.
fn base_of(url: &Url, camera: Option<usize>) -> String {
    let host = url.host_str().unwrap_or("127.0.0.1");
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!("rtsp://{host}{port}/cam{}/", camera.unwrap_or(0))
}

/// `/cam{i}[/trackID={k}]` → (i, k), for `i` below `cameras`.
pub fn parse_path(path: &str, cameras: usize) -> Option<(usize, Option<usize>)> {
    let mut parts = path.trim_matches('/').split('/');
    let camera: usize = parts.next()?.strip_prefix("cam")?.parse().ok()?;
    if camera >= cameras {
        return None;
    }
    let stream = match parts.next() {
        None | Some("") => None,
        Some(p) => Some(p.strip_prefix("trackID=")?.parse().ok()?),
    };
    if parts.next().is_some() {
        return None;
    }
    Some((camera, stream))
}

/// A random 64-bit value (splitmix64 over a counter and the clock); no cryptographic use.
fn random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = nanos.wrapping_add(COUNTER.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_paths() {
        assert_eq!(parse_path("/cam0", 2), Some((0, None)));
        assert_eq!(parse_path("/cam1/", 2), Some((1, None)));
        assert_eq!(parse_path("/cam1/trackID=1", 2), Some((1, Some(1))));
        assert_eq!(parse_path("/cam2", 2), None);
        assert_eq!(parse_path("/cam0/track1", 2), None);
        assert_eq!(parse_path("/cam0/trackID=0/x", 2), None);
        assert_eq!(parse_path("/stream", 2), None);
        assert_eq!(parse_path("/", 2), None);
    }
}
