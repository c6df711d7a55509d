//! Hostile and broken input (issue 9): sources that never start, inputs without a bound, and
//! credentials at every boundary. Each test drives a real `sluice serve` process.

pub mod common;

use std::process::{Command, Stdio};

use common::fake_camera::{Behaviour, FakeCamera};
use common::*;

/// Far below what any unbounded read reaches, far above what a server with a few streams uses.
const RSS_BOUND: u64 = 256 * 1024 * 1024;

fn mkfifo(path: &std::path::Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

#[test]
fn file_sources_that_are_not_regular_files_fail_fast_and_stop_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("camera.fifo");
    mkfifo(&fifo);
    let config = write_config(
        dir.path(),
        &format!(
            "ingest: {{ restart_increment: 30 }}\nstreams:\n  \
             fifo: {{ source: \"file://{}\", preload: true, connect_timeout: 2 }}\n  \
             zero: {{ source: \"file:///dev/zero\", preload: true }}\n  \
             dir: {{ source: \"file://{}\", preload: true }}\n",
            fifo.display(),
            dir.path().display()
        ),
    );
    let mut server = Server::start(&["--config", config.to_str().unwrap()]);
    for name in ["fifo", "zero", "dir"] {
        let info = wait_for_state(&server, name, |i| !i["last_error"].is_null());
        assert_eq!(info["last_error"]["kind"], "invalid_data", "{name}: {info}");
        assert!(
            info["last_error"]["message"]
                .as_str()
                .unwrap()
                .contains("not a regular file"),
            "{name}: {info}"
        );
        assert_eq!(info["available"], false);
    }
    assert!(server.peak_rss() < RSS_BOUND, "{} bytes", server.peak_rss());
    // Removing a stream whose source never opened returns, and so does shutdown.
    assert_eq!(delete(&server.url("/api/streams/fifo")).status, 204);
    assert!(server.terminate().success());
}

/// Serves one preloaded TCP camera stream (with extra stream options) and waits until it fails
/// with `invalid_data` and a message containing `expected`.
fn fails_with(dir: &std::path::Path, url: &str, options: &str, expected: &str) -> Server {
    let config = write_config(
        dir,
        &format!(
            "ingest: {{ restart_increment: 30 }}\nstreams:\n  cam: {{ source: \"{url}\", preload: true, transport: tcp{options} }}\n"
        ),
    );
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let info = wait_for_state(&server, "cam", |i| !i["last_error"].is_null());
    assert_eq!(info["last_error"]["kind"], "invalid_data", "{info}");
    let message = info["last_error"]["message"].as_str().unwrap();
    assert!(message.contains(expected), "{info}");
    server
}

#[test]
fn a_camera_with_an_endless_header_line_is_refused_with_bounded_memory() {
    let camera = FakeCamera::start(Behaviour::EndlessHeader {
        limit: 2 * 1024 * 1024 * 1024,
    });
    let dir = tempfile::tempdir().unwrap();
    let server = fails_with(dir.path(), &camera.url, "", "header longer than");
    assert!(server.peak_rss() < RSS_BOUND, "{} bytes", server.peak_rss());
    // The camera could push little more than the limit plus socket buffers before the close.
    let sent = camera.sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sent < 64 * 1024 * 1024, "{sent} bytes accepted");
}

/// `connect_timeout` fires on a camera that accepts the connection and never answers, with a
/// `timeout` error that names the setting (the run does not hang in `starting`).
#[test]
fn a_camera_that_never_answers_fails_after_the_connect_timeout() {
    let camera = FakeCamera::start(Behaviour::Silent);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "ingest: {{ restart_increment: 30 }}\nstreams:\n  cam: {{ source: \"{}\", preload: true, transport: tcp, connect_timeout: 1 }}\n",
            camera.url
        ),
    );
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let info = wait_for_state(&server, "cam", |i| !i["last_error"].is_null());
    assert_eq!(info["last_error"]["kind"], "timeout", "{info}");
    let message = info["last_error"]["message"].as_str().unwrap();
    assert!(message.contains("within 1 s"), "{info}");
    assert_eq!(info["state"], "retrying", "{info}");
}

#[test]
fn parameter_sets_that_never_come_are_reported_as_such() {
    let camera = FakeCamera::start(Behaviour::BogusSprop);
    let dir = tempfile::tempdir().unwrap();
    fails_with(
        dir.path(),
        &camera.url,
        ", stall_timeout: 2",
        "without usable parameter sets",
    );
}

#[test]
fn credentials_never_leave_the_server() {
    let camera = FakeCamera::start(Behaviour::BogusSprop);
    let port = camera
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    // Percent-encoded special characters, and secrets in the query.
    let encoded = format!(
        "rtsp://admin:p%40ss%2Fw%23rd%3F@127.0.0.1:{port}/fake?token=tok3nSECRET&pwd=pwdSECRET9"
    );
    // A password that was not encoded: URL parsers end the authority early.
    let broken = format!("rtsp://admin:Br0ken@pw/x#y?@127.0.0.1:{port}/fake");
    let secrets = [
        "p%40ss%2Fw%23rd%3F",
        "p@ss/w#rd?",
        "tok3nSECRET",
        "pwdSECRET9",
        "Br0ken",
        "pw/x#y",
        "hunter22",
    ];
    let leaks = |what: &str, text: &str| {
        for s in secrets {
            assert!(!text.contains(s), "{what} contains {s:?}:\n{text}");
        }
    };

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "ingest: {{ restart_increment: 30 }}\nstreams:\n  cam: {{ source: \"{encoded}\", preload: true, transport: tcp, stall_timeout: 2 }}\n"
        ),
    );
    // Debug logs: retina and the other dependencies print URLs and requests there.
    let mut server = Server::start_logging(&["--config", config.to_str().unwrap()], "debug");
    let created = post(
        &server.url("/api/streams"),
        Some(&serde_json::json!({ "name": "broken", "source": broken }).to_string()),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    leaks("POST /api/streams answer", &created.text());
    let _ = hls_base(&server, "broken");
    let invalid = post(
        &server.url("/api/streams"),
        Some(r#"{"name": "bad", "source": "rtsp://admin:hunter22@[bad/x"}"#),
    );
    assert_eq!(invalid.status, 400);
    leaks("400 answer", &invalid.text());
    wait_for_state(&server, "cam", |i| !i["last_error"].is_null());
    wait_for_state(&server, "broken", |i| !i["last_error"].is_null());
    leaks("GET /api/streams", &get(&server.url("/api/streams")).text());
    leaks("/metrics", &get(&server.url("/metrics")).text());
    assert!(server.terminate().success());
    let log: Vec<String> = server.log.try_iter().collect();
    assert!(log.len() > 10, "debug log expected: {log:#?}");
    leaks("the server log", &log.join("\n"));

    // A config error that echoes a source, and a probe of an unreachable camera.
    let bad = write_config(
        dir.path(),
        "streams:\n  cam: \"rtsp://admin:hunter22@cam.local/1?token=tok3nSECRET\"\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&bad)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid type"), "{stderr}");
    leaks("config error", &stderr);
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["probe", "--timeout", "5", &format!("{encoded}x")])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    leaks("probe output", &String::from_utf8_lossy(&out.stdout));
    leaks("probe log", &String::from_utf8_lossy(&out.stderr));
}
