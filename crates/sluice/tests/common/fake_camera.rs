//! A scripted RTSP "camera" for misbehaviour no real server will produce on demand: an endless
//! header line, an SDP with garbage parameter sets and no in-band SPS. It speaks just enough
//! RTSP (any request gets an answer by method) over TCP on 127.0.0.1, one thread per
//! connection, and stops when dropped. Everything it sends is bounded in bytes and time.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How the camera misbehaves.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// Answers the first request with a header line that never ends (up to `limit` bytes).
    EndlessHeader { limit: u64 },
    /// A valid session whose SDP has garbage `sprop-parameter-sets`, then H.264 non-IDR slices
    /// at 25 fps over interleaved TCP, never an SPS/PPS.
    BogusSprop,
    /// Accepts the connection and reads requests, but never answers one.
    Silent,
}

/// A running fake camera.
pub struct FakeCamera {
    /// `rtsp://127.0.0.1:PORT/fake`.
    pub url: String,
    stop: Arc<AtomicBool>,
    /// Bytes written to clients so far.
    pub sent: Arc<AtomicU64>,
}

impl FakeCamera {
    /// Starts a camera with the given behaviour on a port the OS picks.
    pub fn start(behaviour: Behaviour) -> FakeCamera {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("rtsp://{}/fake", listener.local_addr().expect("addr"));
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (stop2, sent2) = (Arc::clone(&stop), Arc::clone(&sent));
        std::thread::spawn(move || {
            let deadline = Instant::now() + super::PATIENCE * 2;
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (stop, sent) = (Arc::clone(&stop2), Arc::clone(&sent2));
                        std::thread::spawn(move || {
                            let _ = serve(conn, behaviour, &stop, &sent);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        FakeCamera { url, stop, sent }
    }
}

impl Drop for FakeCamera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
    conn: TcpStream,
    behaviour: Behaviour,
    stop: &AtomicBool,
    sent: &AtomicU64,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_millis(40)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    let write = |out: &mut TcpStream, bytes: &[u8]| -> std::io::Result<()> {
        out.write_all(bytes)?;
        sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    };
    let mut playing = false;
    let mut seq: u16 = 0;
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < super::PATIENCE * 2 {
        match read_request(&mut reader) {
            Ok(Some(_)) if matches!(behaviour, Behaviour::Silent) => {}
            Ok(Some((method, cseq, url))) => {
                let answer = answer(behaviour, &method, cseq, &url);
                if let Behaviour::EndlessHeader { limit } = behaviour {
                    write(&mut out, answer.as_bytes())?;
                    let junk = vec![b'a'; 64 * 1024];
                    let mut total = 0u64;
                    while total < limit && !stop.load(Ordering::Relaxed) {
                        write(&mut out, &junk)?;
                        total += junk.len() as u64;
                    }
                    return Ok(());
                }
                write(&mut out, answer.as_bytes())?;
                playing |= method == "PLAY";
            }
            Ok(None) => return Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
        if playing {
            // One non-IDR slice (NAL type 1) per 40 ms of timeline, paced by the read timeout.
            let ts = u32::from(seq).wrapping_mul(3600);
            let mut rtp = vec![0x80, 0x80 | 96];
            rtp.extend_from_slice(&seq.to_be_bytes());
            rtp.extend_from_slice(&ts.to_be_bytes());
            rtp.extend_from_slice(&0x1234_5678u32.to_be_bytes());
            rtp.extend_from_slice(&[0x41, 0x9a, 0x02, 0x03, 0x04]);
            let mut frame = vec![b'$', 0];
            frame.extend_from_slice(&(rtp.len() as u16).to_be_bytes());
            frame.extend_from_slice(&rtp);
            write(&mut out, &frame)?;
            seq = seq.wrapping_add(1);
        }
    }
    Ok(())
}

/// Reads one request head: (method, CSeq, URL). `None` at end of stream. Interleaved data
/// from the client (RTCP) is skipped.
fn read_request(
    reader: &mut BufReader<TcpStream>,
) -> std::io::Result<Option<(String, u32, String)>> {
    let mut first = String::new();
    loop {
        if reader.fill_buf()?.first() == Some(&b'$') {
            let mut header = [0u8; 4];
            std::io::Read::read_exact(reader, &mut header)?;
            let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
            let mut skip = vec![0u8; len];
            std::io::Read::read_exact(reader, &mut skip)?;
            continue;
        }
        if reader.read_line(&mut first)? == 0 {
            return Ok(None);
        }
        if !first.trim().is_empty() {
            break;
        }
        first.clear();
    }
    let mut cseq = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.trim().eq_ignore_ascii_case("cseq")
        {
            cseq = v.trim().parse().unwrap_or(0);
        }
    }
    let mut words = first.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let url = words.next().unwrap_or_default().to_string();
    Ok(Some((method, cseq, url)))
}

fn answer(behaviour: Behaviour, method: &str, cseq: u32, url: &str) -> String {
    if let Behaviour::EndlessHeader { .. } = behaviour {
        return format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nX-Junk: ");
    }
    match method {
        "OPTIONS" => format!(
            "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n"
        ),
        "DESCRIBE" => {
            let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=fake\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n\
                       a=rtpmap:96 H264/90000\r\n\
                       a=fmtp:96 packetization-mode=1;profile-level-id=42e01f;sprop-parameter-sets=Z2Fr,aGFr\r\n\
                       a=control:trackID=0\r\n";
            format!(
                "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Base: {url}/\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
                sdp.len()
            )
        }
        "SETUP" => format!(
            "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: 12345678;timeout=60\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        ),
        "PLAY" => format!(
            "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: 12345678\r\nRTP-Info: url={url};seq=0;rtptime=0\r\n\r\n"
        ),
        _ => format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: 12345678\r\n\r\n"),
    }
}
