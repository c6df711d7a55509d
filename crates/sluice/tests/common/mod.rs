//! Shared helpers for the integration tests: a real `sluice serve` process on a free port, an
//! HTTP client, and ffprobe. Each test declares it `pub mod common;`, so helpers one test
//! binary does not use are not reported as dead code there.

pub mod fake_camera;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Generous bound for anything a loaded 2-core machine should finish.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A running `sluice serve`, stopped (SIGTERM, then kill) when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Lines the server printed to stderr (its log).
    pub log: mpsc::Receiver<String>,
    log_thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts `sluice serve` with extra arguments, on a port the OS picks, and waits until it
    /// prints its URL.
    pub fn start(args: &[&str]) -> Server {
        Server::start_logging(args, "info")
    }

    /// [`Server::start`] with a `RUST_LOG` filter.
    pub fn start_logging(args: &[&str], filter: &str) -> Server {
        Server::spawn(Command::new(env!("CARGO_BIN_EXE_sluice")), args, filter)
    }

    /// Like [`Server::start`], with the open-file limits (soft and hard) set by the shell that
    /// starts it.
    pub fn start_with_open_file_limits(soft: u32, hard: u32, args: &[&str]) -> Server {
        let mut command = Command::new("sh");
        command.args([
            "-c",
            &format!("ulimit -Sn {soft} && ulimit -Hn {hard} && exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_sluice"),
        ]);
        Server::spawn(command, args, "info")
    }

    fn spawn(mut command: Command, args: &[&str], filter: &str) -> Server {
        let mut child = command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", filter)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sluice");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (url_tx, url_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("Web UI: ").nth(1) {
                    let _ = url_tx.send(rest.trim_end_matches('/').to_string());
                }
            }
        });
        let (log_tx, log) = mpsc::channel();
        let log_thread = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[sluice] {line}");
                let _ = log_tx.send(line);
            }
        });
        let base = url_rx
            .recv_timeout(PATIENCE)
            .expect("sluice did not print its URL");
        Server {
            child,
            base,
            log,
            log_thread: Some(log_thread),
        }
    }

    /// Stops the server (SIGTERM) and returns its whole log: reading the log of a running
    /// server could miss lines it is still writing.
    pub fn finish_log(&mut self) -> Vec<String> {
        assert!(self.terminate().success(), "sluice exited with an error");
        self.log.try_iter().collect()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's peak resident memory so far (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmHWM")
            * 1024
    }

    /// The full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        self.base.strip_prefix("http://").expect("http URL")
    }

    /// Waits (bounded by [`PATIENCE`]) for a log line containing `text` and returns it.
    pub fn wait_for_log(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with {text:?}"),
            }
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let (tx, rx) = mpsc::channel();
        let pid = self.child.id();
        std::thread::spawn(move || {
            if rx.recv_timeout(PATIENCE).is_err() {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        });
        let status = self.child.wait().expect("wait");
        let _ = tx.send(());
        // The log is complete once the reader has seen the end of stderr.
        if let Some(t) = self.log_thread.take() {
            let _ = t.join();
        }
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP agent that returns every status as a response.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(PATIENCE))
        .build()
        .into()
}

/// A response's status, content type and body.
pub struct Fetched {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Fetched {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read(mut response: ureq::http::Response<ureq::Body>) -> Fetched {
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let content_type = headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .expect("read body");
    Fetched {
        status,
        content_type,
        headers,
        body,
    }
}

/// GET a URL.
pub fn get(url: &str) -> Fetched {
    read(agent().get(url).call().expect("GET"))
}

/// POST a JSON body (or nothing) to a URL.
pub fn post(url: &str, json: Option<&str>) -> Fetched {
    let response = match json {
        Some(body) => agent()
            .post(url)
            .header("content-type", "application/json")
            .send(body),
        None => agent().post(url).send_empty(),
    };
    read(response.expect("POST"))
}

/// Asks for a stream's HLS URL and returns the absolute URL of its directory
/// (`http://…/api/hls/TOKEN/`).
pub fn hls_base(server: &Server, stream: &str) -> String {
    let r = post(&server.url(&format!("/api/streams/{stream}/hls")), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    let url = v["url"].as_str().expect("url").to_string();
    let token = url
        .strip_prefix("/api/hls/")
        .and_then(|s| s.strip_suffix("/master_playlist.m3u8"))
        .expect("url shape");
    assert_eq!(token.len(), 64);
    assert!(token.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    server.url(&format!("/api/hls/{token}/"))
}

/// A parsed media playlist: the complete segments with their durations, and the parts.
#[derive(Debug, Default)]
pub struct MediaPlaylist {
    pub media_sequence: u64,
    pub segments: Vec<(u64, f64)>,
    pub parts: Vec<(String, f64)>,
    pub discontinuities: usize,
}

/// Parses the tags the tests look at.
pub fn parse_playlist(text: &str) -> MediaPlaylist {
    let mut p = MediaPlaylist::default();
    let mut duration = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            p.media_sequence = v.parse().expect("media sequence");
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            duration = Some(v.trim_end_matches(',').parse::<f64>().expect("extinf"));
        } else if let Some(v) = line.strip_prefix("#EXT-X-PART:") {
            let d = v
                .split(',')
                .find_map(|a| a.strip_prefix("DURATION="))
                .expect("part duration")
                .parse()
                .expect("part duration");
            let uri = v
                .split(',')
                .find_map(|a| a.strip_prefix("URI="))
                .expect("part uri")
                .trim_matches('"')
                .to_string();
            p.parts.push((uri, d));
        } else if line == "#EXT-X-DISCONTINUITY" {
            p.discontinuities += 1;
        } else if let Some(name) = line.strip_prefix("./segment/") {
            let n = name
                .trim_end_matches(".m4s")
                .parse()
                .expect("segment number");
            p.segments
                .push((n, duration.take().expect("EXTINF before URI")));
        }
    }
    p
}

/// Fails with a clear message when a tool the tests need is missing. The README's test command
/// installs them; a missing tool is a broken setup, not a reason to skip.
pub fn require_tool(name: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not installed: run the README's test command (scripts/test.sh), which installs it"
    );
}

/// The repository's root (where `node_modules/` and `test-artifacts/` are).
pub fn repo_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What ffprobe said about a URL or file.
pub struct Probe {
    pub success: bool,
    /// Warnings and errors, minus the benign line ffmpeg prints for any live fMP4 playlist.
    pub warnings: Vec<String>,
    /// Decoded frames per stream, by codec name.
    pub frames: Vec<(String, u64)>,
}

impl Probe {
    pub fn frames_of(&self, codec: &str) -> u64 {
        self.frames
            .iter()
            .find(|(c, _)| c == codec)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    }
}

/// Runs ffprobe at `-v warning`, decoding every frame, with extra input options.
pub fn ffprobe(input: &str, input_options: &[&str]) -> Probe {
    require_tool("ffprobe");
    let out = Command::new("ffprobe")
        .args(["-v", "warning", "-protocol_whitelist", "file,http,tcp"])
        .args(input_options)
        .args([
            "-count_frames",
            "-show_entries",
            "stream=codec_name,nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(input)
        .output()
        .expect("run ffprobe");
    let warnings = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| {
            !l.contains("Found duplicated MOOV Atom") && !l.contains("Last message repeated")
        })
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let mut frames = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut cols = line.split(',');
        if let (Some(codec), Some(Ok(n))) = (cols.next(), cols.next().map(|n| n.trim().parse()))
            && !frames.iter().any(|(c, _): &(String, u64)| c == codec)
        {
            frames.push((codec.to_string(), n));
        }
    }
    Probe {
        success: out.status.success(),
        warnings,
        frames,
    }
}

/// Writes a VOD playlist with absolute URLs for the complete segments of a live playlist, so
/// ffprobe reads exactly those segments (over HTTP) and stops.
pub fn write_vod_playlist(dir: &Path, base: &str, live: &str) -> std::path::PathBuf {
    let mut out = String::new();
    for line in live.lines() {
        if line.starts_with("#EXT-X-PART")
            || line.starts_with("#EXT-X-PRELOAD-HINT")
            || line.starts_with("#EXT-X-SERVER-CONTROL")
        {
            continue;
        }
        if line.starts_with("#EXT-X-VERSION") {
            out.push_str("#EXT-X-VERSION:7\n");
        } else if let Some(uri) = line
            .strip_prefix("#EXT-X-MAP:URI=\"")
            .and_then(|u| u.strip_suffix('"'))
        {
            // `init.mp4`, or `init/N.mp4` after a parameter change.
            out.push_str(&format!("#EXT-X-MAP:URI=\"{base}{uri}\"\n"));
        } else if let Some(rest) = line.strip_prefix("./") {
            out.push_str(&format!("{base}{rest}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str("#EXT-X-ENDLIST\n");
    let path = dir.join("vod.m3u8");
    std::fs::write(&path, out).expect("write vod playlist");
    path
}

/// A real RTSP camera: GStreamer's gst-rtsp-server (`tests/fixtures/rtsp_server.py`), on a
/// port the OS picks. It stops when dropped (its stdin closes) or when killed.
pub struct Camera {
    child: Child,
    /// `rtsp://127.0.0.1:PORT/stream`.
    pub url: String,
    /// Lines the fixture printed after `READY` (fault acknowledgements).
    events: mpsc::Receiver<String>,
}

impl Camera {
    /// Starts the fixture with extra arguments (`--codec h265`, `--auth digest:u:p`, …).
    pub fn start(args: &[&str]) -> Camera {
        require_tool("gst-launch-1.0");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rtsp_server.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the RTSP fixture (needs Debian's /usr/bin/python3 with gi)");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let (event_tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("READY ") {
                    let _ = tx.send(url.trim().to_string());
                } else {
                    let _ = event_tx.send(line);
                }
            }
        });
        let url = rx
            .recv_timeout(PATIENCE)
            .expect("the RTSP fixture did not become ready");
        Camera { child, url, events }
    }

    /// The URL with credentials inserted.
    pub fn url_with(&self, user: &str, pass: &str) -> String {
        self.url
            .replacen("rtsp://", &format!("rtsp://{user}:{pass}@"), 1)
    }

    /// The TCP port it listens on (to start a replacement on the same port with `--port`).
    pub fn port(&self) -> String {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.split('/').next())
            .expect("port in the URL")
            .to_string()
    }

    /// The fixture's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Freezes the camera (SIGSTOP): its sockets stay open and accept connections, but nothing
    /// is sent or answered.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Resumes a paused camera (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid; no memory is shared.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }

    /// Sends a fault command (the camera must run with `--faults`; see the fixture's docs) and
    /// waits until the camera says it took effect.
    pub fn inject(&mut self, command: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("fixture stdin");
        writeln!(stdin, "{command}").expect("write a fault command");
        stdin.flush().expect("flush");
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("the camera never applied {command:?}"));
            assert_ne!(line, format!("ERROR {command}"), "the camera refused it");
            if line == format!("DONE {command}") {
                return;
            }
        }
    }

    /// Kills the server abruptly, as a camera losing power.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What `/proc` says about a process: open file descriptors, resident memory, threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessStats {
    /// Entries in `/proc/PID/fd`.
    pub fds: usize,
    /// `VmRSS`, in bytes.
    pub rss: u64,
    /// `Threads`.
    pub threads: u64,
}

/// Reads [`ProcessStats`] of a live process.
pub fn process_stats(pid: u32) -> ProcessStats {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc fd")
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    ProcessStats {
        fds,
        rss: field("VmRSS:") * 1024,
        threads: field("Threads:"),
    }
}

/// A metric's value from `/metrics` (the first sample whose name and labels start with
/// `name`).
pub fn metric(server: &Server, name: &str) -> f64 {
    let text = get(&server.url("/metrics")).text();
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
}

/// The files in a directory, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Writes a config file with the given YAML and returns its path (inside `dir`).
pub fn write_config(dir: &Path, yaml: &str) -> std::path::PathBuf {
    let path = dir.join("sluice.yaml");
    std::fs::write(&path, yaml).expect("write config");
    path
}

/// Starts `sluice serve` with a config file of this YAML, written into `dir`.
pub fn serve_yaml(dir: &Path, yaml: &str) -> Server {
    let config = write_config(dir, yaml);
    Server::start(&["--config", config.to_str().expect("UTF-8 path")])
}

/// `GET /api/streams/{name}` as JSON.
pub fn stream_info(server: &Server, name: &str) -> serde_json::Value {
    let r = get(&server.url(&format!("/api/streams/{name}")));
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).expect("json")
}

/// Waits (bounded by [`PATIENCE`]) until the stream's API state satisfies `ok`, checking
/// every 50 ms; returns the state that did.
pub fn wait_for_state(
    server: &Server,
    name: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let info = stream_info(server, name);
        if ok(&info) {
            return info;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stream {name} never reached the expected state: {info}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Fetches the playlist until it lists at least `n` complete segments, parking on the next
/// segment (the server answers when it completes) instead of sleeping.
pub fn wait_for_segments(base: &str, n: usize) -> String {
    loop {
        let r = get(&format!("{base}playlist.m3u8"));
        assert_eq!(r.status, 200, "playlist: {}", r.text());
        let text = r.text();
        let pl = parse_playlist(&text);
        if pl.segments.len() >= n {
            return text;
        }
        let next = pl.segments.last().map_or(pl.media_sequence, |s| s.0 + 1);
        let s = get(&format!("{base}segment/{next}.m4s"));
        assert_eq!(s.status, 200, "segment {next} never completed");
    }
}

/// Waits for `n` complete segments, then has ffprobe decode exactly them over HTTP and checks
/// the three things that matter: success, no warnings, and every frame of the media there.
/// Returns the playlist and the probe.
pub fn decode_window(base: &str, n: usize, fps: f64, video_codec: &str) -> (String, Probe) {
    let live = wait_for_segments(base, n);
    let probe = decode_playlist(base, &live, fps, video_codec);
    (live, probe)
}

/// Has ffprobe decode exactly the complete segments of `live` over HTTP, and checks success, no
/// warnings, and every video frame of their duration.
pub fn decode_playlist(base: &str, live: &str, fps: f64, video_codec: &str) -> Probe {
    let playlist = parse_playlist(live);
    let dir = tempfile::tempdir().expect("tempdir");
    let vod = write_vod_playlist(dir.path(), base, live);
    let probe = ffprobe(vod.to_str().expect("utf-8 path"), &[]);
    assert!(probe.success, "ffprobe failed: {:?}", probe.warnings);
    assert!(
        probe.warnings.is_empty(),
        "ffprobe warnings: {:?}",
        probe.warnings
    );
    let media: f64 = playlist.segments.iter().map(|s| s.1).sum();
    assert_eq!(
        probe.frames_of(video_codec),
        (media * fps).round() as u64,
        "{video_codec} frames for {media} s of media"
    );
    probe
}

/// The response body as JSON.
pub fn json(r: &Fetched) -> serde_json::Value {
    serde_json::from_slice(&r.body).expect("JSON body")
}

/// GET with an optional Authorization header.
pub fn get_with(url: &str, authorization: Option<&str>) -> Fetched {
    let mut req = agent().get(url);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    read(req.call().expect("GET"))
}

/// POST with no body and an optional Authorization header.
pub fn post_with(url: &str, authorization: Option<&str>) -> Fetched {
    let mut req = agent().post(url);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    read(req.send_empty().expect("POST"))
}

/// POST a JSON body with an optional Authorization header.
pub fn post_json_with(url: &str, json: &str, authorization: Option<&str>) -> Fetched {
    let mut req = agent().post(url).header("content-type", "application/json");
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    read(req.send(json).expect("POST"))
}

/// PATCH a JSON body.
pub fn patch(url: &str, json: &str) -> Fetched {
    read(
        agent()
            .patch(url)
            .header("content-type", "application/json")
            .send(json)
            .expect("PATCH"),
    )
}

/// DELETE a URL.
pub fn delete(url: &str) -> Fetched {
    read(agent().delete(url).call().expect("DELETE"))
}

/// Sends one HTTP/1.1 request with exactly these headers (no Host unless given) on a new
/// connection, with `Content-Length` and `Connection: close` added, and reads the response.
pub fn raw_request(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Fetched {
    use std::io::{Read, Write};
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    let mut stream = std::net::TcpStream::connect(server.addr()).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    parse_response(&response)
}

/// Parses one complete HTTP/1.1 response (with a `Content-Length` or chunked body).
pub fn parse_response(response: &[u8]) -> Fetched {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut rest = &response[end + 4..];
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let line_end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("chunk size line");
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&rest[..line_end])
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim(),
                16,
            )
            .expect("chunk size");
            rest = &rest[line_end + 2..];
            if size == 0 {
                break body;
            }
            body.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
    } else {
        let length = header("content-length").map_or(rest.len(), |v| v.parse().expect("length"));
        rest[..length].to_vec()
    };
    Fetched {
        status,
        content_type: header("content-type").unwrap_or_default(),
        headers,
        body,
    }
}
