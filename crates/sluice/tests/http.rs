//! The HTTP server against the real binary, with raw TCP clients: connections that stop
//! sending are closed, a connection cap and an open-file limit do not stop health checks, long
//! waits for media are not cut, and web pages on other sites (or reaching the server through a
//! rebound DNS name) cannot use the API.

pub mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::*;

/// A connection with a read timeout of [`PATIENCE`].
fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.addr()).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream
}

/// Reads until the server closes the connection; fails if it is still open after
/// [`PATIENCE`]. Returns what was read.
fn read_until_closed(stream: &mut TcpStream, what: &str) -> Vec<u8> {
    let mut got = Vec::new();
    match stream.read_to_end(&mut got) {
        Ok(_) => got,
        // A reset is also the server closing it.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => got,
        Err(e) => panic!(
            "the server did not close {what} ({e}); read so far: {:?}",
            String::from_utf8_lossy(&got)
        ),
    }
}

/// Sends the first half of a request head: the server waits for the rest.
fn send_half_a_request(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow")
        .expect("send");
}

#[test]
fn connections_that_stop_sending_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(
        dir.path(),
        "server: { header_timeout: 1, body_timeout: 1 }\nstreams: {}\n",
    );

    // Half a request head.
    let mut half = connect(&server);
    send_half_a_request(&mut half);
    let got = read_until_closed(&mut half, "a connection with half a request head");
    assert!(!String::from_utf8_lossy(&got).contains(" 200 "), "{got:?}");

    // An idle keep-alive connection after one complete exchange.
    let mut idle = connect(&server);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let got = read_until_closed(&mut idle, "an idle keep-alive connection");
    let response = parse_response(&got);
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "ok");
    assert_eq!(
        got.len(),
        got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4 + 2,
        "one response, then the close"
    );

    // A request body that stops arriving.
    let mut slow = connect(&server);
    slow.write_all(
        b"POST /api/streams HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"name\": ",
    )
    .unwrap();
    let got = read_until_closed(&mut slow, "a connection whose request body stopped");
    let response = parse_response(&got);
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(
        json(&response)["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot read the request body"),
        "{}",
        response.text()
    );
    assert_eq!(get(&server.url("/api/streams")).text(), "[]");
}

#[test]
fn the_connection_cap_holds_new_connections_until_the_timeout_frees_a_slot() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(
        dir.path(),
        "server: { header_timeout: 1, max_connections: 3 }\nstreams: {}\n",
    );
    // Three connections fill the cap, six more wait in the listen queue; all send half a head.
    let mut slow: Vec<TcpStream> = (0..9)
        .map(|_| {
            let mut s = connect(&server);
            send_half_a_request(&mut s);
            s
        })
        .collect();
    server.wait_for_log(
        "connection limit reached: 3 connections open (server.max_connections); new \
         connections wait until one closes",
    );
    // A health check queued behind them answers once the header timeout has reaped them.
    let health = get(&server.url("/healthz"));
    assert_eq!(health.status, 200);
    for s in &mut slow {
        read_until_closed(s, "a connection with half a request head");
    }
    let repeated: Vec<String> = server
        .log
        .try_iter()
        .filter(|l| l.contains("connection limit reached"))
        .collect();
    assert!(
        repeated.is_empty(),
        "logged once, not per connection: {repeated:?}"
    );
}

#[test]
fn health_checks_answer_under_an_open_file_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "server: { header_timeout: 1 }\nstreams: {}\n");
    // 64 descriptors: the default cap (1024) is lowered so that connections cannot take the
    // descriptors accept, cameras and files need.
    let server =
        Server::start_with_open_file_limits(64, 64, &["--config", config.to_str().unwrap()]);
    server.wait_for_log(
        "server.max_connections 1024 lowered to 48: the process may open 64 files \
         (RLIMIT_NOFILE) and keeps 16 for cameras and files",
    );
    // More half-sent requests than the process has descriptors.
    let mut slow: Vec<TcpStream> = (0..80)
        .map(|_| {
            let mut s = connect(&server);
            send_half_a_request(&mut s);
            s
        })
        .collect();
    let health = get(&server.url("/healthz"));
    assert_eq!(health.status, 200, "{}", health.text());
    for s in &mut slow {
        read_until_closed(s, "a connection with half a request head");
    }
    assert_eq!(get(&server.url("/healthz")).status, 200);
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_limit() {
    let server = Server::start_with_open_file_limits(64, 4096, &[]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .expect("the open-file limit")
        .split_whitespace()
        .collect();
    assert_eq!(open_files, ["4096", "4096", "files"], "{limits}");
}

#[test]
fn blocking_playlist_reloads_outlast_the_connection_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(
        dir.path(),
        "server: { header_timeout: 1, body_timeout: 1 }\nhls: { segment_duration: 3 }\n\
         streams:\n  demo: { source: \"builtin:demo\", preload: true }\n",
    );
    let base = hls_base(&server, "demo");
    // Segment last+1 is in progress, so last+2 completes a whole segment (3 s) or more from
    // now: three times the timeouts.
    let last = parse_playlist(&wait_for_segments(&base, 1))
        .segments
        .last()
        .unwrap()
        .0;
    let wanted = last + 2;
    let held = get(&format!("{base}playlist.m3u8?_HLS_msn={wanted}"));
    assert_eq!(held.status, 200, "{}", held.text());
    let playlist = parse_playlist(&held.text());
    assert!(
        playlist.segments.iter().any(|s| s.0 == wanted && s.1 > 2.0),
        "segment {wanted} complete in:\n{}",
        held.text()
    );
}

/// The stream names the API lists.
fn stream_names(server: &Server) -> Vec<String> {
    let list = get(&server.url("/api/streams"));
    json(&list)
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

const NEW_STREAM: &str = r#"{"name": "lobby", "source": "builtin:demo"}"#;

#[test]
fn json_bodies_must_be_sent_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(
        dir.path(),
        "streams:\n  demo: { source: \"builtin:demo\" }\n",
    );
    let host = server.addr().to_string();
    // What a form or a fetch without preflight on any web page can send.
    for content_type in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut headers = vec![("Host", host.as_str())];
        if let Some(t) = content_type {
            headers.push(("Content-Type", t));
        }
        let r = raw_request(&server, "POST", "/api/streams", &headers, NEW_STREAM);
        assert_eq!(r.status, 415, "{content_type:?}: {}", r.text());
        let found = match content_type {
            Some(t) => format!("Content-Type {t:?} is not supported"),
            None => "the request has no Content-Type".into(),
        };
        assert_eq!(
            json(&r)["error"],
            format!("{found}: send the body as JSON with Content-Type: application/json")
        );
        let r = raw_request(
            &server,
            "PATCH",
            "/api/streams/demo",
            &headers,
            r#"{"source": "file:///nonexistent.mp4"}"#,
        );
        assert_eq!(r.status, 415, "{}", r.text());
    }
    assert_eq!(stream_names(&server), ["demo"]);
    assert_eq!(stream_info(&server, "demo")["source"], "builtin:demo");
    let r = raw_request(
        &server,
        "POST",
        "/api/streams",
        &[
            ("Host", &host),
            ("Content-Type", "Application/JSON; charset=utf-8"),
        ],
        NEW_STREAM,
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

#[test]
fn pages_on_other_sites_cannot_change_anything() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("recordings");
    std::fs::create_dir_all(&rec).unwrap();
    let server = serve_yaml(
        dir.path(),
        &format!(
            "server: {{ record_dirs: [\"{}\"] }}\nstreams:\n  demo: {{ source: \"builtin:demo\" }}\n",
            rec.display()
        ),
    );
    let host = server.addr().to_string();
    let evil = [
        ("Host", host.as_str()),
        ("Origin", "http://evil.example"),
        ("Content-Type", "application/json"),
    ];
    let refused = |method: &str, path: &str, body: &str| {
        let r = raw_request(&server, method, path, &evil, body);
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
        assert_eq!(
            json(&r)["error"],
            "request refused: Origin \"http://evil.example\" is not this server's origin (a \
             cross-site request); to let a web app there use the API, add \
             \"http://evil.example\" to server.allowed_origins"
        );
    };
    refused("POST", "/api/streams", NEW_STREAM);
    refused("POST", "/api/streams/demo/hls", "");
    refused(
        "POST",
        "/api/streams/demo/record",
        r#"{"path": "x.mp4", "duration": 1}"#,
    );
    refused(
        "PATCH",
        "/api/streams/demo",
        r#"{"source": "builtin:demo"}"#,
    );
    refused("DELETE", "/api/streams/demo", "");
    // Nothing changed: no new stream, the stream not started, no recording, no file.
    assert_eq!(stream_names(&server), ["demo"]);
    let info = stream_info(&server, "demo");
    assert_eq!(info["state"], "idle", "{info}");
    assert_eq!(info["outputs"], serde_json::json!([]));
    assert!(info["recording"].is_null() && info["recordings"] == serde_json::json!([]));
    assert_eq!(std::fs::read_dir(&rec).unwrap().count(), 0);

    // The server's own page (same origin) and programs (no Origin) can.
    let own_origin = format!("http://{host}");
    let own = [
        ("Host", host.as_str()),
        ("Origin", own_origin.as_str()),
        ("Content-Type", "application/json"),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    let r = raw_request(&server, "POST", "/api/streams", &own, NEW_STREAM);
    assert_eq!(r.status, 201, "{}", r.text());
    let r = raw_request(&server, "POST", "/api/streams/demo/hls", &own, "");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = raw_request(&server, "DELETE", "/api/streams/lobby", &own, "");
    assert_eq!(r.status, 204, "{}", r.text());
    let program = [
        ("Host", host.as_str()),
        ("Content-Type", "application/json"),
    ];
    let r = raw_request(&server, "POST", "/api/streams", &program, NEW_STREAM);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(stream_names(&server), ["demo", "lobby"]);
}

#[test]
fn browsers_must_reach_the_api_by_address_localhost_or_an_allowed_name() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(
        dir.path(),
        "server:\n  allowed_hosts: [nvr.example]\n  allowed_origins: [\"https://ha.example:8123\"]\n\
         streams:\n  demo: { source: \"builtin:demo\" }\n",
    );
    let port = server.addr().rsplit(':').next().unwrap().to_string();
    // DNS rebinding: evil.example now resolves to this server, so the browser sends the
    // attacker page's requests here, and as same-origin ones.
    let rebound = format!("evil.example:{port}");
    let rebound_origin = format!("http://{rebound}");
    let refusal = "request refused: Host \"evil.example:PORT\" is not allowed (protection \
                   against DNS rebinding); if you reach Sluice by this name, add \
                   \"evil.example\" to server.allowed_hosts"
        .replace("PORT", &port);
    let r = raw_request(
        &server,
        "POST",
        "/api/streams",
        &[
            ("Host", &rebound),
            ("Origin", &rebound_origin),
            ("Content-Type", "application/json"),
        ],
        NEW_STREAM,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(json(&r)["error"], refusal.as_str());
    // Reading too: a same-origin GET carries no Origin, but browsers send Sec-Fetch-*.
    for path in ["/api/streams", "/api/streams/demo", "/metrics", "/"] {
        let r = raw_request(
            &server,
            "GET",
            path,
            &[
                ("Host", &rebound),
                ("Sec-Fetch-Site", "same-origin"),
                ("Sec-Fetch-Mode", "cors"),
            ],
            "",
        );
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        assert_eq!(json(&r)["error"], refusal.as_str());
    }
    // Health checks and HLS capability URLs are open to any name.
    let r = raw_request(
        &server,
        "GET",
        "/healthz",
        &[("Host", &rebound), ("Sec-Fetch-Site", "same-origin")],
        "",
    );
    assert_eq!(r.status, 200);
    let playlist = hls_base(&server, "demo").replace(server.base.as_str(), "") + "playlist.m3u8";
    let r = raw_request(
        &server,
        "GET",
        &playlist,
        &[("Host", &rebound), ("Sec-Fetch-Site", "cross-site")],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().starts_with("#EXTM3U"), "{}", r.text());
    assert_eq!(stream_names(&server), ["demo"]);

    // Allowed: IP addresses, localhost, listed names, listed origins; programs with any Host
    // (Home Assistant reaching Sluice by its container name).
    let allowed = [
        (
            format!("localhost:{port}"),
            format!("http://localhost:{port}"),
        ),
        (
            format!("nvr.example:{port}"),
            format!("http://nvr.example:{port}"),
        ),
        (
            format!("127.0.0.1:{port}"),
            "https://ha.example:8123".to_string(),
        ),
    ];
    // Creates stream `name` with this Host and Origin.
    let create = |name: &str, host: &str, origin: Option<&str>| {
        let mut headers = vec![("Host", host), ("Content-Type", "application/json")];
        headers.extend(origin.map(|o| ("Origin", o)));
        let body = format!(r#"{{"name": "{name}", "source": "builtin:demo"}}"#);
        raw_request(&server, "POST", "/api/streams", &headers, &body)
    };
    for (i, (host, origin)) in allowed.iter().enumerate() {
        let r = create(&format!("s{i}"), host, Some(origin));
        assert_eq!(r.status, 201, "{host} {origin}: {}", r.text());
    }
    let r = create("s3", &format!("sluice:{port}"), None);
    assert_eq!(r.status, 201, "{}", r.text());
    // A listed origin does not make every origin welcome.
    let r = create(
        "s4",
        &format!("127.0.0.1:{port}"),
        Some("https://ha.example:9999"),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(stream_names(&server), ["demo", "s0", "s1", "s2", "s3"]);
}
