//! A bounded relay in front of retina: every byte a camera sends passes a framer that enforces
//! limits before retina buffers it.
//!
//! retina (0.4.21) reads the RTSP connection into a buffer that grows without limit: a camera
//! (or anything answering on its port) that sends an endless header line, endless header lines
//! or a huge `Content-Length` grows the process to gigabytes. Its parser has a message-size
//! limit internally, but the connection does not set one and there is no public way to hand
//! it a connection of our own. So retina connects to a loopback port of this relay, which holds
//! the real connection to the camera and forwards:
//! - client → camera unchanged (retina's own requests);
//! - camera → client through [`Framer`]: RTSP message heads up to [`MAX_HEAD`] bytes, bodies up
//!   to [`MAX_BODY`], interleaved `$` frames (bounded by their 16-bit length), and at most
//!   [`MAX_SAME_TIMESTAMP`] bytes of RTP with one timestamp on a channel (a frame that never
//!   ends would otherwise grow retina's depacketizer).
//!
//! A camera that breaks a limit ends the connection with a typed [`SourceError`] that the RTSP
//! source reports instead of retina's "connection closed".
//!
//! One rewrite is needed: RTP over UDP is sent by the camera to us directly, and retina expects
//! it from the address of its RTSP peer — which is now the relay. A `SETUP` response whose
//! `Transport` has `server_port` but no `source` gets `;source=<camera address>` (RFC 2326
//! 12.39), which retina honours.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use url::Url;

use super::{ErrorKind, SourceError};

/// Longest RTSP message head (request/status line and headers) accepted from a camera.
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest RTSP message body (an SDP is a few KiB).
pub const MAX_BODY: u64 = 1024 * 1024;
/// Most RTP payload bytes with one timestamp on one channel (a 4K intra frame is a few MiB).
pub const MAX_SAME_TIMESTAMP: u64 = 32 * 1024 * 1024;
/// After one direction of a relayed connection ends, the other gets this long to finish (a
/// TEARDOWN answer) before it is closed too: a paused camera must not hold a socket forever.
const LINGER: Duration = Duration::from_secs(5);
/// After the source is dropped, retina may still open a connection for its TEARDOWN.
const ACCEPT_GRACE: Duration = Duration::from_secs(10);

/// The relay of one RTSP session attempt. Dropping it stops accepting new connections (after
/// a grace period); connections in flight end when either side closes.
pub struct Guard {
    /// The URL retina connects to: the camera's, with the relay's loopback authority.
    pub url: Url,
    failure: Arc<Mutex<Option<SourceError>>>,
    _stop: oneshot::Sender<()>,
}

impl Guard {
    /// Connects to the camera of `camera` (within the caller's timeout) and starts the relay.
    pub async fn start(camera: &Url) -> Result<Guard, SourceError> {
        let host = camera.host_str().unwrap_or_default().to_string();
        let port = camera.port().unwrap_or(554);
        let first = connect(&host, port).await?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| local_error(&e))?;
        let local = listener.local_addr().map_err(|e| local_error(&e))?;
        let mut url = camera.clone();
        let _ = url.set_ip_host(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let _ = url.set_port(Some(local.port()));
        let failure = Arc::new(Mutex::new(None));
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(accept_loop(
            listener,
            first,
            host,
            port,
            Arc::clone(&failure),
            stopped,
        ));
        Ok(Guard {
            url,
            failure,
            _stop: stop,
        })
    }

    /// Why the relay closed the connection, if it did (a camera that broke a limit, or a
    /// failed connection for a later request).
    pub fn failure(&self) -> Option<SourceError> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

async fn connect(host: &str, port: u16) -> Result<TcpStream, SourceError> {
    let stream = TcpStream::connect((host, port)).await.map_err(|e| {
        use std::io::ErrorKind as Io;
        match e.kind() {
            Io::ConnectionRefused => SourceError::new(
                ErrorKind::Refused,
                format!("connection refused: nothing listens on the camera's RTSP port ({e})"),
            ),
            Io::TimedOut => {
                SourceError::new(ErrorKind::Timeout, format!("the camera timed out ({e})"))
            }
            _ => SourceError::new(
                ErrorKind::Unreachable,
                format!("camera unreachable: check the host name and the network ({e})"),
            ),
        }
    })?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

fn local_error(e: &std::io::Error) -> SourceError {
    SourceError::new(
        ErrorKind::Unreachable,
        format!("cannot open the local RTSP relay: {e}"),
    )
}

async fn accept_loop(
    listener: TcpListener,
    first: TcpStream,
    host: String,
    port: u16,
    failure: Arc<Mutex<Option<SourceError>>>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut first = Some(first);
    let mut grace: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut stopped, if grace.is_none() => {
                grace = Some(Box::pin(tokio::time::sleep(ACCEPT_GRACE)));
                continue;
            }
            _ = async { grace.as_mut().expect("guarded").await }, if grace.is_some() => return,
        };
        let Ok((client, peer)) = accepted else {
            continue;
        };
        if !peer.ip().is_loopback() {
            continue;
        }
        let upstream = match first.take() {
            Some(s) => s,
            None => match connect(&host, port).await {
                Ok(s) => s,
                Err(e) => {
                    *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    continue;
                }
            },
        };
        let camera_ip = upstream
            .peer_addr()
            .map(|a: SocketAddr| a.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let _ = client.set_nodelay(true);
        tokio::spawn(relay(client, upstream, camera_ip, Arc::clone(&failure)));
    }
}

/// Relays one connection until either side ends (the other then gets [`LINGER`]).
async fn relay(
    client: TcpStream,
    camera: TcpStream,
    camera_ip: IpAddr,
    failure: Arc<Mutex<Option<SourceError>>>,
) {
    let (mut client_r, mut client_w) = client.into_split();
    let (mut camera_r, mut camera_w) = camera.into_split();
    let requests = async move {
        let _ = tokio::io::copy(&mut client_r, &mut camera_w).await;
        let _ = camera_w.shutdown().await;
    };
    let responses = async move {
        let mut framer = Framer::new(camera_ip);
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Vec::with_capacity(64 * 1024);
        loop {
            let n = match camera_r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            out.clear();
            if let Err(e) = framer.feed(&buf[..n], &mut out) {
                tracing::warn!(cause = ?e.kind, "closing the camera connection: {e}");
                *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                break;
            }
            if client_w.write_all(&out).await.is_err() {
                break;
            }
        }
        let _ = client_w.shutdown().await;
    };
    tokio::pin!(requests, responses);
    tokio::select! {
        _ = &mut requests => { let _ = tokio::time::timeout(LINGER, responses).await; }
        _ = &mut responses => { let _ = tokio::time::timeout(LINGER, requests).await; }
    }
}

/// Where the framer is in the camera's byte stream.
#[derive(Debug)]
enum State {
    /// Between messages.
    Idle,
    /// Collecting an interleaved frame's header (`$`, channel, length, and the first RTP
    /// header bytes) in `pending`.
    FrameHeader,
    /// Forwarding the rest of an interleaved frame.
    Frame { remaining: usize },
    /// Collecting an RTSP message head in `pending`.
    Head,
    /// Forwarding a message body.
    Body { remaining: u64 },
}

/// Checks and forwards the camera → client byte stream (see the module docs).
#[derive(Debug)]
pub struct Framer {
    state: State,
    pending: Vec<u8>,
    camera_ip: IpAddr,
    /// Per interleaved channel: the last RTP timestamp and the payload bytes seen with it.
    timestamps: Vec<(u8, u32, u64)>,
}

impl Framer {
    /// A framer for a connection to the camera at `camera_ip`.
    pub fn new(camera_ip: IpAddr) -> Self {
        Framer {
            state: State::Idle,
            pending: Vec::new(),
            camera_ip,
            timestamps: Vec::new(),
        }
    }

    /// Consumes `input`, appending what may be forwarded to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), SourceError> {
        while !input.is_empty() {
            match self.state {
                State::Idle => match input[0] {
                    b'$' => self.state = State::FrameHeader,
                    b'\r' | b'\n' => {
                        out.push(input[0]);
                        input = &input[1..];
                    }
                    _ => self.state = State::Head,
                },
                State::FrameHeader => {
                    // `$`, channel, 16-bit length, then up to 8 bytes of RTP header.
                    let want = |p: &[u8]| {
                        if p.len() < 4 {
                            4
                        } else {
                            4 + usize::from(u16::from_be_bytes([p[2], p[3]])).min(8)
                        }
                    };
                    while self.pending.len() < want(&self.pending) && !input.is_empty() {
                        self.pending.push(input[0]);
                        input = &input[1..];
                    }
                    if self.pending.len() < want(&self.pending) {
                        continue;
                    }
                    let p = &self.pending;
                    let len = usize::from(u16::from_be_bytes([p[2], p[3]]));
                    if p[1].is_multiple_of(2) && len >= 8 {
                        let ts = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
                        self.count_timestamp(p[1], ts, len as u64)?;
                    }
                    out.extend_from_slice(&self.pending);
                    let remaining = 4 + len - self.pending.len();
                    self.pending.clear();
                    self.state = if remaining == 0 {
                        State::Idle
                    } else {
                        State::Frame { remaining }
                    };
                }
                State::Frame { remaining } => {
                    let n = remaining.min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.state = if n == remaining {
                        State::Idle
                    } else {
                        State::Frame {
                            remaining: remaining - n,
                        }
                    };
                }
                State::Head => {
                    // Copy up to the end of the head (or all of the input).
                    let before = self.pending.len();
                    self.pending.extend_from_slice(input);
                    let search_from = before.saturating_sub(3);
                    let end = find_head_end(&self.pending[search_from..]).map(|e| e + search_from);
                    match end {
                        None => {
                            input = &[];
                            if self.pending.len() > MAX_HEAD {
                                return Err(too_long("message header", MAX_HEAD as u64));
                            }
                        }
                        Some(end) => {
                            if end > MAX_HEAD {
                                return Err(too_long("message header", MAX_HEAD as u64));
                            }
                            input = &input[end - before..];
                            self.pending.truncate(end);
                            let head = std::mem::take(&mut self.pending);
                            let (head, body) = self.check_head(head)?;
                            out.extend_from_slice(&head);
                            self.state = if body == 0 {
                                State::Idle
                            } else {
                                State::Body { remaining: body }
                            };
                        }
                    }
                }
                State::Body { remaining } => {
                    let n = (remaining.min(input.len() as u64)) as usize;
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        State::Idle
                    } else {
                        State::Body { remaining: left }
                    };
                }
            }
        }
        Ok(())
    }

    fn count_timestamp(&mut self, channel: u8, ts: u32, len: u64) -> Result<(), SourceError> {
        let entry = match self.timestamps.iter_mut().find(|(c, _, _)| *c == channel) {
            Some(e) => e,
            None => {
                self.timestamps.push((channel, ts, 0));
                self.timestamps.last_mut().expect("just pushed")
            }
        };
        if entry.1 != ts {
            *entry = (channel, ts, 0);
        }
        entry.2 += len;
        if entry.2 > MAX_SAME_TIMESTAMP {
            return Err(SourceError::new(
                ErrorKind::InvalidData,
                format!(
                    "the camera sent more than {MAX_SAME_TIMESTAMP} bytes of RTP with one \
                     timestamp: that is not a video frame"
                ),
            ));
        }
        Ok(())
    }

    /// Checks a complete head: its body length, and the `Transport` rewrite for UDP.
    fn check_head(&self, head: Vec<u8>) -> Result<(Vec<u8>, u64), SourceError> {
        let text = String::from_utf8_lossy(&head);
        let mut body = 0u64;
        let mut rewrite = None;
        for (i, line) in text.split('\n').enumerate() {
            let line = line.trim_end_matches('\r');
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if i == 0 {
                continue;
            }
            let name = name.trim();
            if name.eq_ignore_ascii_case("content-length") {
                body = value.trim().parse().map_err(|_| {
                    SourceError::new(
                        ErrorKind::InvalidData,
                        format!(
                            "the camera sent an invalid Content-Length {:?}",
                            value.trim()
                        ),
                    )
                })?;
            } else if name.eq_ignore_ascii_case("transport")
                && text.starts_with("RTSP/")
                && value.contains("server_port=")
                && !value.contains("source=")
            {
                rewrite = Some(line.to_string());
            }
        }
        if body > MAX_BODY {
            return Err(too_long("message body", MAX_BODY));
        }
        let head = match rewrite {
            Some(line) => text
                .replacen(&line, &format!("{line};source={}", self.camera_ip), 1)
                .into_bytes(),
            None => head,
        };
        Ok((head, body))
    }
}

/// The length of the head including its blank line (`\r\n\r\n` or a bare `\n\n`).
fn find_head_end(data: &[u8]) -> Option<usize> {
    let crlf = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4);
    let lf = data.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn too_long(what: &str, limit: u64) -> SourceError {
    SourceError::new(
        ErrorKind::InvalidData,
        format!(
            "the camera sent an RTSP {what} longer than {limit} bytes: not an RTSP camera, or a \
             broken one; the connection was closed"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(framer: &mut Framer, input: &[u8], chunk: usize) -> Result<Vec<u8>, SourceError> {
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            framer.feed(piece, &mut out)?;
        }
        Ok(out)
    }

    fn ip() -> IpAddr {
        "192.0.2.7".parse().unwrap()
    }

    #[test]
    fn forwards_messages_and_frames_unchanged_in_any_chunking() {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: 5\r\n\r\nv=0\r\n");
        let rtp = [0x80u8, 96, 0, 1, 0, 0, 0x10, 0, 0, 0, 0, 1, 0xaa, 0xbb];
        stream.extend_from_slice(&[b'$', 0, 0, rtp.len() as u8]);
        stream.extend_from_slice(&rtp);
        stream.extend_from_slice(&[b'$', 1, 0, 2, 9, 9]);
        stream.extend_from_slice(b"\r\nRTSP/1.0 200 OK\r\nCSeq: 3\r\n\r\n");
        for chunk in [1, 2, 3, 5, 7, 64, 4096] {
            let out = run(&mut Framer::new(ip()), &stream, chunk).unwrap();
            assert_eq!(out, stream, "chunk {chunk}");
        }
    }

    #[test]
    fn adds_the_camera_address_to_udp_setup_answers() {
        let answer = b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nTransport: RTP/AVP;unicast;client_port=5000-5001;server_port=6000-6001\r\nSession: 1\r\n\r\n";
        let out = run(&mut Framer::new(ip()), answer, 10).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("server_port=6000-6001;source=192.0.2.7\r\nSession: 1"),
            "{text}"
        );
        // An answer that names its source, and TCP answers, are left alone.
        for answer in [
            &b"RTSP/1.0 200 OK\r\nTransport: RTP/AVP;server_port=6000-6001;source=10.0.0.9\r\n\r\n"
                [..],
            &b"RTSP/1.0 200 OK\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n"[..],
        ] {
            assert_eq!(run(&mut Framer::new(ip()), answer, 3).unwrap(), answer);
        }
    }

    #[test]
    fn endless_headers_and_bodies_are_refused() {
        let mut endless = b"RTSP/1.0 200 OK\r\nX-Junk: ".to_vec();
        endless.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        let e = run(&mut Framer::new(ip()), &endless, 4096).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidData);
        assert!(e.message.contains("message header longer than"), "{e}");
        let mut many = b"RTSP/1.0 200 OK\r\n".to_vec();
        for _ in 0..20_000 {
            many.extend_from_slice(b"X: y\r\n");
        }
        assert!(run(&mut Framer::new(ip()), &many, 1000).is_err());
        let big = format!(
            "RTSP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        let e = run(&mut Framer::new(ip()), big.as_bytes(), 7).unwrap_err();
        assert!(e.message.contains("message body longer than"), "{e}");
        let bad = b"RTSP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n";
        assert!(run(&mut Framer::new(ip()), bad, 7).is_err());
    }

    #[test]
    fn a_frame_that_never_ends_is_refused() {
        let mut framer = Framer::new(ip());
        let mut out = Vec::new();
        let mut packet = vec![b'$', 0, 0xff, 0xff, 0x80, 96, 0, 1, 0, 0, 0x10, 0];
        packet.resize(4 + 0xffff, 0);
        let mut sent = 0u64;
        let result = loop {
            out.clear();
            if let Err(e) = framer.feed(&packet, &mut out) {
                break e;
            }
            sent += 0xffff;
            assert!(sent <= MAX_SAME_TIMESTAMP + 0xffff, "no limit");
        };
        assert!(result.message.contains("one timestamp"), "{result}");
        // Changing timestamps are fine: 100 MiB of ordinary frames pass.
        let mut framer = Framer::new(ip());
        for ts in 0..1600u32 {
            packet[8..12].copy_from_slice(&ts.to_be_bytes());
            out.clear();
            framer.feed(&packet, &mut out).unwrap();
        }
    }
}
