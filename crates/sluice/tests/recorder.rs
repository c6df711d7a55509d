//! Recording clips with lookback, against the real binary: files checked by ffprobe and by
//! their box layout; path policy, concurrency, failures and shutdown.

pub mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn serve_recording(dir: &Path, streams: &str) -> (Server, PathBuf) {
    let rec = dir.join("recordings");
    std::fs::create_dir_all(&rec).unwrap();
    let config = write_config(
        dir,
        &format!(
            "server: {{ record_dirs: [\"{}\"] }}\ningest: {{ restart_increment: 1 }}\nstreams:\n{streams}",
            rec.display()
        ),
    );
    (Server::start(&["--config", config.to_str().unwrap()]), rec)
}

/// A server with one preloaded demo stream, `demo`, recording into `DIR/recordings`.
fn serve_demo(dir: &Path) -> (Server, PathBuf) {
    serve_recording(dir, "  demo: { source: \"builtin:demo\", preload: true }\n")
}

fn record(server: &Server, stream: &str, body: &str) -> Fetched {
    post(
        &server.url(&format!("/api/streams/{stream}/record")),
        Some(body),
    )
}

/// Waits until the stream has no recording in progress and returns the last result.
fn finished(server: &Server, stream: &str) -> serde_json::Value {
    let info = wait_for_state(server, stream, |i| {
        i["recording"].is_null() && !i["recordings"].as_array().unwrap().is_empty()
    });
    info["recordings"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone()
}

/// The top-level box types of a file.
fn boxes(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= bytes.len() {
        let mut size = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        if size == 1 {
            size = u64::from_be_bytes(bytes[pos + 8..pos + 16].try_into().unwrap()) as usize;
        }
        out.push(String::from_utf8_lossy(&bytes[pos + 4..pos + 8]).into_owned());
        assert!(size >= 8, "box size");
        pos += size;
    }
    assert_eq!(pos, bytes.len(), "boxes cover the file exactly");
    out
}

/// ffprobe's view of a clip: (codec, duration, decoded frames) per stream, and warnings.
fn probe_clip(path: &Path) -> (Vec<(String, f64, u64)>, String) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "warning",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,duration,nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let streams = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (
                c[0].to_string(),
                c[1].parse().unwrap(),
                c[2].parse().unwrap(),
            )
        })
        .collect();
    (streams, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A clip must be fast-start, decode without a warning, have both tracks, and last lookback +
/// duration within one GOP (1 s), with every video frame of that time.
fn check_clip(path: &Path, expected: f64, fps: f64) {
    assert_eq!(&boxes(path)[..3], ["ftyp", "moov", "mdat"]);
    let (streams, warnings) = probe_clip(path);
    assert!(warnings.is_empty(), "{warnings}");
    let video = streams.iter().find(|s| s.0 == "h264").expect("video track");
    assert!(
        streams.iter().any(|s| s.0 == "aac" && s.2 > 0),
        "audio track: {streams:?}"
    );
    assert!(
        (video.1 - expected).abs() <= 1.0,
        "duration {} for {expected}: {streams:?}",
        video.1
    );
    assert_eq!(
        video.2,
        (video.1 * fps).round() as u64,
        "every frame: {streams:?}"
    );
    let dir = path.parent().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn clip_from_the_file_source_includes_the_lookback() {
    let dir = tempfile::tempdir().unwrap();
    let (server, rec) = serve_demo(dir.path());
    let base = hls_base(&server, "demo");
    wait_for_segments(&base, 4);
    let r = record(
        &server,
        "demo",
        r#"{"path": "front/clip.mp4", "duration": 3, "lookback": 2}"#,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let v = json(&r);
    let lookback = v["lookback"].as_f64().unwrap();
    assert!((2.0..3.0).contains(&lookback), "{v}");
    let path = rec.canonicalize().unwrap().join("front/clip.mp4");
    assert_eq!(v["path"], path.to_str().unwrap());
    let active = stream_info(&server, "demo")["recording"].clone();
    assert_eq!(active["path"], path.to_str().unwrap(), "{active}");
    let result = finished(&server, "demo");
    assert!(result["error"].is_null(), "{result}");
    check_clip(&path, 3.0 + lookback, 25.0);
    assert_eq!(
        result["bytes"].as_u64().unwrap(),
        std::fs::metadata(&path).unwrap().len()
    );
    let metrics = get(&server.url("/metrics")).text();
    assert!(
        metrics.contains("sluice_recordings_total{stream=\"demo\",result=\"ok\"} 1"),
        "{metrics}"
    );
}

#[test]
fn clip_from_an_rtsp_camera() {
    let camera = Camera::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (server, rec) = serve_recording(
        dir.path(),
        &format!("  cam: {{ source: \"{}\", transport: tcp }}\n", camera.url),
    );
    // Not running before: the recording starts the stream, and there is no lookback.
    let r = record(
        &server,
        "cam",
        r#"{"path": "cam.mp4", "duration": 3, "lookback": 5}"#,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(json(&r)["lookback"], 0.0);
    let result = finished(&server, "cam");
    assert!(result["error"].is_null(), "{result}");
    check_clip(&rec.canonicalize().unwrap().join("cam.mp4"), 3.0, 25.0);
    // Once the recording is over nothing else wants the stream: it stops.
    wait_for_state(&server, "cam", |i| i["state"] == "idle");
}

#[test]
fn clip_across_a_worker_restart_plays_continuously() {
    let camera = Camera::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (server, rec) = serve_recording(
        dir.path(),
        &format!("  cam: {{ source: \"{}\", transport: tcp }}\n", camera.url),
    );
    let base = hls_base(&server, "cam");
    wait_for_segments(&base, 2);
    let r = record(
        &server,
        "cam",
        r#"{"path": "restart.mp4", "duration": 5, "lookback": 1}"#,
    );
    assert_eq!(r.status, 202);
    // Force a restart of the worker mid-recording: the same camera as a "new" source.
    wait_for_state(&server, "cam", |i| {
        i["recording"]["seconds_written"].as_f64().unwrap_or(0.0) >= 2.0
    });
    let runs = stream_info(&server, "cam")["runs"].as_u64().unwrap();
    assert_eq!(
        patch(
            &server.url("/api/streams/cam"),
            &format!("{{\"source\": \"{}\"}}", camera.url)
        )
        .status,
        200
    );
    let result = finished(&server, "cam");
    assert!(result["error"].is_null(), "{result}");
    assert!(
        stream_info(&server, "cam")["runs"].as_u64().unwrap() > runs,
        "the worker restarted"
    );
    let path = rec.canonicalize().unwrap().join("restart.mp4");
    check_clip(&path, 6.0, 25.0);
    // One continuous timeline: video timestamps strictly increase with no gap over 0.2 s.
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=dts_time",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let dts: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim_end_matches(',').parse().ok())
        .collect();
    assert!(dts.len() > 100);
    for w in dts.windows(2) {
        assert!(
            w[1] > w[0] && w[1] - w[0] < 0.2,
            "timeline jumps from {} to {}",
            w[0],
            w[1]
        );
    }
}

#[test]
fn paths_outside_the_allowed_directories_are_403_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (server, rec) = serve_recording(dir.path(), "  demo: { source: \"builtin:demo\" }\n");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, rec.join("link")).unwrap();
    // Symlinks inside the allowed directories are not followed either, wherever they point.
    std::fs::create_dir_all(rec.join("real")).unwrap();
    std::os::unix::fs::symlink(rec.join("real"), rec.join("inner")).unwrap();
    let outside_dirs = "outside the allowed directories";
    let symlinks = "symlinks inside the allowed directories are not followed";
    for (path, says) in [
        ("../escape.mp4".to_string(), outside_dirs),
        ("a/../../escape.mp4".to_string(), outside_dirs),
        (outside.join("abs.mp4").display().to_string(), outside_dirs),
        ("/tmp/sluice-escape.mp4".to_string(), outside_dirs),
        ("link/through-symlink.mp4".to_string(), symlinks),
        ("link/deeper/through-symlink.mp4".to_string(), symlinks),
        ("inner/x.mp4".to_string(), symlinks),
    ] {
        let r = record_to(&server, "demo", &path, serde_json::json!({"duration": 1}));
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        assert!(error_of(&r).contains(says), "{path}: {}", r.text());
    }
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing written outside"
    );
    assert!(!dir.path().join("escape.mp4").exists());
    assert!(!Path::new("/tmp/sluice-escape.mp4").exists());
    assert_eq!(
        stream_info(&server, "demo")["state"],
        "idle",
        "the stream was not started"
    );
    let r = record(&server, "nope", r#"{"path": "x.mp4"}"#);
    assert_eq!(r.status, 404);
    let r = record(&server, "demo", r#"{"path": "x.mp4", "duration": -1}"#);
    assert_eq!(r.status, 400);
}

#[test]
fn concurrent_record_requests_get_one_409_each_but_one() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _rec) = serve_demo(dir.path());
    let url = server.url("/api/streams/demo/record");
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                post(
                    &url,
                    Some(&format!("{{\"path\": \"c{i}.mp4\", \"duration\": 2}}")),
                )
            })
        })
        .collect();
    let results: Vec<Fetched> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let accepted = results.iter().filter(|r| r.status == 202).count();
    let conflicts: Vec<&Fetched> = results.iter().filter(|r| r.status == 409).collect();
    assert_eq!(accepted, 1);
    assert_eq!(conflicts.len(), 5);
    assert!(
        json(conflicts[0])["error"]
            .as_str()
            .unwrap()
            .starts_with("stream is already recording to ")
    );
    assert!(finished(&server, "demo")["error"].is_null());
}

#[test]
fn nothing_captured_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    // A camera that does not exist: connection refused on a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (server, rec) = serve_recording(
        dir.path(),
        &format!(
            "  cam: {{ source: \"rtsp://127.0.0.1:{port}/x\", connect_timeout: 1, stall_timeout: 1 }}\n"
        ),
    );
    let r = record(&server, "cam", r#"{"path": "nothing.mp4", "duration": 1}"#);
    assert_eq!(r.status, 202);
    let result = finished(&server, "cam");
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .contains("failed to capture anything"),
        "{result}"
    );
    assert_eq!(
        std::fs::read_dir(&rec).unwrap().count(),
        0,
        "no file, no temporaries"
    );
}

/// Mounts a tmpfs (read-only, or tiny). Only root may; as root (CI) a failure to mount is a
/// test failure, not a skip.
fn mount_tmpfs(at: &Path, options: &str) -> Unmount {
    std::fs::create_dir_all(at).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs", at.to_str().unwrap()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        mounted,
        "cannot mount a tmpfs at {}: this test needs root (CAP_SYS_ADMIN)",
        at.display()
    );
    Unmount(at.to_path_buf())
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn unwritable_directory_and_full_disk_are_clear_errors_and_the_stream_is_unharmed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (server, rec) = serve_demo(dir.path());
    let base = hls_base(&server, "demo");
    wait_for_segments(&base, 3);

    // Read-only: refused at once with the OS's reason.
    // Root writes through file permissions, so as root the directory is a read-only mount.
    let ro = rec.join("readonly");
    let _ro_mount = if is_root() {
        Some(mount_tmpfs(&ro, "ro,size=1m"))
    } else {
        std::fs::create_dir_all(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        None
    };
    let r = record(
        &server,
        "demo",
        r#"{"path": "readonly/clip.mp4", "duration": 1}"#,
    );
    assert_eq!(r.status, 500, "{}", r.text());
    let error = json(&r)["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("Read-only file system") || error.contains("Permission denied"),
        "{error}"
    );

    // A file where a directory should be.
    std::fs::write(rec.join("blocker"), b"x").unwrap();
    let r = record(
        &server,
        "demo",
        r#"{"path": "blocker/clip.mp4", "duration": 1}"#,
    );
    assert_eq!(r.status, 500, "{}", r.text());

    // Disk full while writing: a tiny tmpfs, which only root can mount (CI runs as root).
    let full = rec.join("full");
    if !is_root() {
        eprintln!("SKIPPED the disk-full case: mounting a tmpfs needs root");
    } else {
        let _full_mount = mount_tmpfs(&full, "size=64k");
        let r = record(
            &server,
            "demo",
            r#"{"path": "full/clip.mp4", "duration": 3, "lookback": 3}"#,
        );
        assert_eq!(r.status, 202, "{}", r.text());
        let result = finished(&server, "demo");
        let error = result["error"].as_str().expect("failed");
        assert!(error.contains("No space left on device"), "{error}");
        assert_eq!(
            std::fs::read_dir(&full).unwrap().count(),
            0,
            "temporaries removed"
        );
    }

    // The stream kept streaming throughout.
    let info = stream_info(&server, "demo");
    assert_eq!(info["state"], "running");
    assert_eq!(get(&format!("{base}playlist.m3u8")).status, 200);
    // And records fine afterwards.
    let r = record(&server, "demo", r#"{"path": "ok.mp4", "duration": 1}"#);
    assert_eq!(r.status, 202);
    assert!(finished(&server, "demo")["error"].is_null());
}

#[test]
fn sigterm_during_a_recording_leaves_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, rec) = serve_demo(dir.path());
    let base = hls_base(&server, "demo");
    wait_for_segments(&base, 2);
    let r = record(&server, "demo", r#"{"path": "long.mp4", "duration": 600}"#);
    assert_eq!(r.status, 202);
    wait_for_state(&server, "demo", |i| {
        i["recording"]["seconds_written"].as_f64().unwrap_or(0.0) >= 2.0
    });
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    let path = rec.canonicalize().unwrap().join("long.mp4");
    assert!(path.exists(), "the recording was finalized on shutdown");
    assert_eq!(&boxes(&path)[..3], ["ftyp", "moov", "mdat"]);
    let (streams, warnings) = probe_clip(&path);
    assert!(warnings.is_empty(), "{warnings}");
    assert!(streams[0].1 >= 2.0, "{streams:?}");
}

#[test]
fn record_cli_writes_a_clip_with_lookback() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cli/clip.mp4");
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "record",
            "builtin:demo",
            "--output",
            out.to_str().unwrap(),
            "--duration",
            "2",
            "--lookback",
            "2",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    check_clip(&out, 4.0, 25.0);
    // An existing file is kept unless --overwrite says otherwise.
    let before = std::fs::read(&out).unwrap();
    let again = |overwrite: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.args([
            "record",
            "builtin:demo",
            "--output",
            out.to_str().unwrap(),
            "--duration",
            "1",
        ]);
        if overwrite {
            cmd.arg("--overwrite");
        }
        cmd.output().unwrap()
    };
    let refused = again(false);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("already exists") && stderr.contains("--overwrite"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), before);
    let replaced = again(true);
    assert!(
        replaced.status.success(),
        "{}",
        String::from_utf8_lossy(&replaced.stderr)
    );
    check_clip(&out, 1.0, 25.0);
    let fail = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "record",
            "rtsp://127.0.0.1:1/x",
            "--output",
            dir.path().join("x.mp4").to_str().unwrap(),
            "--duration",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(fail.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&fail.stderr).contains("refused"),
        "{}",
        String::from_utf8_lossy(&fail.stderr)
    );
    assert!(!dir.path().join("x.mp4").exists());
}

/// A record request with any path (JSON-escaped) and extra fields.
fn record_to(server: &Server, stream: &str, path: &str, extra: serde_json::Value) -> Fetched {
    let mut body = serde_json::json!({ "path": path });
    if let serde_json::Value::Object(extra) = extra {
        body.as_object_mut().unwrap().extend(extra);
    }
    record(server, stream, &body.to_string())
}

/// Records, waits for the result and asserts it succeeded.
fn record_ok(
    server: &Server,
    stream: &str,
    path: &str,
    extra: serde_json::Value,
) -> serde_json::Value {
    let r = record_to(server, stream, path, extra);
    assert_eq!(r.status, 202, "{path}: {}", r.text());
    let result = finished(server, stream);
    assert!(result["error"].is_null(), "{result}");
    result
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

fn error_of(r: &Fetched) -> String {
    json(r)["error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn symlinks_planted_at_the_old_temporary_names_write_nothing_outside() {
    let dir = tempfile::tempdir().unwrap();
    let (server, rec) = serve_demo(dir.path());
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    // The names the recorder used to write to, made to point at files outside.
    let victims = [
        ("clip.mp4.tmp", outside.join("victim-tmp")),
        ("clip.mp4.data.tmp", outside.join("victim-data")),
    ];
    for (name, victim) in &victims {
        std::fs::write(victim, b"precious bytes").unwrap();
        std::os::unix::fs::symlink(victim, rec.join(name)).unwrap();
    }
    record_ok(
        &server,
        "demo",
        "clip.mp4",
        serde_json::json!({"duration": 1}),
    );
    for (name, victim) in &victims {
        let bytes = std::fs::read(victim).unwrap();
        assert!(
            bytes == b"precious bytes",
            "{name}: the file outside was overwritten ({} bytes now)",
            bytes.len()
        );
        assert_eq!(&std::fs::read_link(rec.join(name)).unwrap(), victim);
        std::fs::remove_file(rec.join(name)).unwrap();
    }
    assert_eq!(names_in(&outside), ["victim-data", "victim-tmp"]);
    check_clip(&rec.join("clip.mp4"), 1.0, 25.0);
}

#[test]
fn a_fifo_at_the_target_or_a_temporary_name_never_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let (server, rec) = serve_demo(dir.path());
    // At the target: a clear 409 at once, with or without overwrite; the FIFO stays.
    mkfifo(&rec.join("pipe.mp4"));
    for extra in [
        serde_json::json!({}),
        serde_json::json!({"overwrite": true}),
    ] {
        let r = record_to(&server, "demo", "pipe.mp4", extra);
        assert_eq!(r.status, 409, "{}", r.text());
        assert!(
            error_of(&r).contains("is a FIFO, not a regular file"),
            "{}",
            r.text()
        );
    }
    // At the names temporaries used to have: never opened (opening a FIFO for writing blocks
    // until a reader comes).
    mkfifo(&rec.join("clip.mp4.tmp"));
    mkfifo(&rec.join("clip.mp4.data.tmp"));
    record_ok(
        &server,
        "demo",
        "clip.mp4",
        serde_json::json!({"duration": 1}),
    );
    assert_eq!(
        names_in(&rec),
        ["clip.mp4", "clip.mp4.data.tmp", "clip.mp4.tmp", "pipe.mp4"]
    );
    assert_eq!(&boxes(&rec.join("clip.mp4"))[..3], ["ftyp", "moov", "mdat"]);
}

#[test]
fn a_directory_swapped_for_a_symlink_during_a_recording_writes_nothing_outside() {
    let dir = tempfile::tempdir().unwrap();
    let (server, rec) = serve_demo(dir.path());
    let base = hls_base(&server, "demo");
    wait_for_segments(&base, 1);
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    // Live media arrives in real time: each swap happens long before 2 s of it were recorded.
    let start = |path: &str| {
        let r = record_to(&server, "demo", path, serde_json::json!({"duration": 2}));
        assert_eq!(r.status, 202, "{}", r.text());
    };
    let failed_as_moved = || {
        let result = finished(&server, "demo");
        let error = result["error"].as_str().expect("the recording failed");
        assert!(
            error.contains("was moved or replaced during the recording"),
            "{error}"
        );
    };

    // The directory is moved aside and a symlink to outside takes its place.
    start("cam/clip.mp4");
    std::fs::rename(rec.join("cam"), rec.join("cam.old")).unwrap();
    std::os::unix::fs::symlink(&outside, rec.join("cam")).unwrap();
    failed_as_moved();
    assert_eq!(names_in(&outside), Vec::<String>::new(), "nothing outside");
    assert_eq!(
        names_in(&rec.join("cam.old")),
        Vec::<String>::new(),
        "no temporaries left"
    );

    // The directory itself is moved outside, and a symlink inside leads to it.
    start("door/clip.mp4");
    std::fs::rename(rec.join("door"), outside.join("door")).unwrap();
    std::os::unix::fs::symlink(outside.join("door"), rec.join("door")).unwrap();
    failed_as_moved();
    assert_eq!(
        names_in(&outside.join("door")),
        Vec::<String>::new(),
        "nothing outside"
    );

    // The stream still records fine.
    record_ok(
        &server,
        "demo",
        "ok.mp4",
        serde_json::json!({"duration": 1}),
    );
}

#[test]
fn an_existing_file_is_409_unless_overwrite_and_one_that_appears_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (server, rec) = serve_demo(dir.path());
    let existing = rec.join("exists.mp4");
    std::fs::write(&existing, b"precious").unwrap();
    let r = record_to(&server, "demo", "exists.mp4", serde_json::json!({}));
    assert_eq!(r.status, 409, "{}", r.text());
    let error = error_of(&r);
    assert!(
        error.contains("already exists") && error.contains("\"overwrite\": true"),
        "{error}"
    );
    assert_eq!(std::fs::read(&existing).unwrap(), b"precious");
    assert_eq!(
        stream_info(&server, "demo")["recording"],
        serde_json::Value::Null
    );

    record_ok(
        &server,
        "demo",
        "exists.mp4",
        serde_json::json!({"duration": 1, "overwrite": true}),
    );
    check_clip(&existing, 1.0, 25.0);

    // A file that appears at the target during the recording is not replaced: the clip is
    // kept under the next free name, and the result says where.
    let r = record_to(
        &server,
        "demo",
        "late.mp4",
        serde_json::json!({"duration": 2}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    std::fs::write(rec.join("late.mp4"), b"appeared").unwrap();
    std::fs::write(rec.join("late-1.mp4"), b"also appeared").unwrap();
    let result = finished(&server, "demo");
    assert!(result["error"].is_null(), "{result}");
    let kept = rec.canonicalize().unwrap().join("late-2.mp4");
    assert_eq!(result["path"], kept.to_str().unwrap(), "{result}");
    assert_eq!(std::fs::read(rec.join("late.mp4")).unwrap(), b"appeared");
    assert_eq!(
        std::fs::read(rec.join("late-1.mp4")).unwrap(),
        b"also appeared"
    );
    check_clip(&kept, 2.0, 25.0);
}

#[test]
fn one_path_has_one_writer_however_it_is_spelled() {
    let dir = tempfile::tempdir().unwrap();
    let (server, rec) = serve_recording(
        dir.path(),
        "  demo: { source: \"builtin:demo\", preload: true }\n  other: { source: \"builtin:demo\", preload: true }\n",
    );
    // Two streams asking for the same file at once: one 202, one 409.
    let url = |s: &str| server.url(&format!("/api/streams/{s}/record"));
    let handles: Vec<_> = ["demo", "other"]
        .into_iter()
        .map(|s| {
            let url = url(s);
            std::thread::spawn(move || post(&url, Some(r#"{"path": "race.mp4", "duration": 1}"#)))
        })
        .collect();
    let mut statuses: Vec<u16> = handles
        .into_iter()
        .map(|h| h.join().unwrap().status)
        .collect();
    statuses.sort();
    assert_eq!(statuses, [202, 409]);
    for s in ["demo", "other"] {
        wait_for_state(&server, s, |i| i["recording"].is_null());
    }

    let r = record_to(
        &server,
        "demo",
        "same.mp4",
        serde_json::json!({"duration": 2}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let absolute = rec.join("same.mp4").display().to_string();
    for spelling in [
        "same.mp4",
        "./same.mp4",
        "sub/../same.mp4",
        absolute.as_str(),
    ] {
        let r = record_to(
            &server,
            "other",
            spelling,
            serde_json::json!({"overwrite": true}),
        );
        assert_eq!(r.status, 409, "{spelling}: {}", r.text());
        assert!(
            error_of(&r).contains("is being recorded by stream \"demo\""),
            "{spelling}: {}",
            r.text()
        );
    }
    assert!(finished(&server, "demo")["error"].is_null());
    // Once the first writer is done, the file can be replaced on request.
    record_ok(
        &server,
        "other",
        "sub/../same.mp4",
        serde_json::json!({"duration": 1, "overwrite": true}),
    );
    check_clip(&rec.join("same.mp4"), 1.0, 25.0);
}

#[test]
fn a_nul_byte_or_an_over_long_name_is_400() {
    let dir = tempfile::tempdir().unwrap();
    let (server, rec) = serve_recording(dir.path(), "  demo: { source: \"builtin:demo\" }\n");
    let long_name = format!("{}.mp4", "x".repeat(252));
    let long_path = format!("{}x.mp4", "d/".repeat(2100));
    for (path, says) in [
        ("a\0b.mp4", "NUL byte"),
        ("dir\0/b.mp4", "NUL byte"),
        (long_name.as_str(), "256 bytes long; the limit is 255"),
        (long_path.as_str(), "4205 bytes long; the limit is 4095"),
    ] {
        let r = record_to(&server, "demo", path, serde_json::json!({"duration": 1}));
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(error_of(&r).contains(says), "{}", r.text());
    }
    assert_eq!(names_in(&rec), Vec::<String>::new(), "nothing created");
    assert_eq!(stream_info(&server, "demo")["state"], "idle");
}
