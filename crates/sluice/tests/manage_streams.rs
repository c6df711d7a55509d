//! Managing cameras through the API, against the real binary: probing a source before adding
//! it (`POST /api/probe`), changing a stream's options (`PATCH /api/streams/{name}`), and the
//! state file that keeps streams added, changed or removed through the API across restarts.

pub mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

fn probe(server: &Server, body: &str) -> Fetched {
    post(&server.url("/api/probe"), Some(body))
}

/// The track of `kind` in a probe's JSON.
fn track<'a>(v: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    v["tracks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} track: {v}"))
}

fn stream_names(server: &Server) -> Vec<String> {
    json(&get(&server.url("/api/streams")))
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn probe_describes_the_demo_and_an_rtsp_camera() {
    let camera = Camera::start(&["--fps", "25"]);
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(dir.path(), "streams: {}\n");

    let r = probe(&server, r#"{"source": "builtin:demo"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&r);
    eprintln!("demo: {v}");
    assert_eq!(v["source"], "builtin:demo");
    let video = track(&v, "video");
    assert_eq!(video["codec"], "h264");
    assert!(video["codec_string"].as_str().unwrap().starts_with("avc1."));
    assert_eq!(
        (&video["width"], &video["height"]),
        (&640.into(), &360.into())
    );
    assert_eq!(video["fps"].as_f64().map(f64::round), Some(25.0), "{v}");
    let audio = track(&v, "audio");
    assert_eq!(audio["codec_string"], "mp4a.40.2");
    assert_eq!(
        (&audio["sample_rate"], &audio["channels"]),
        (&48000.into(), &1.into())
    );

    let r = probe(
        &server,
        &format!(
            r#"{{"source": "{}", "transport": "tcp", "timeout": 20}}"#,
            camera.url
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&r);
    eprintln!("camera: {v}");
    let video = track(&v, "video");
    assert_eq!(
        (&video["width"], &video["height"]),
        (&320.into(), &240.into())
    );
    assert_eq!(video["fps"].as_f64().map(f64::round), Some(25.0), "{v}");
    assert_eq!(track(&v, "audio")["codec"], "aac");
    // Probing adds nothing.
    assert!(stream_names(&server).is_empty());

    // Bad requests are 400 with the key at fault.
    let r = probe(&server, r#"{"source": "gopher://x"}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    let v = json(&r);
    assert_eq!(
        (&v["kind"], &v["key"]),
        (&"invalid_url".into(), &"source".into())
    );
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("unsupported source scheme")
    );
    let r = probe(&server, r#"{"source": "builtin:demo", "timeout": 31}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(json(&r)["key"], "timeout");
    let r = probe(
        &server,
        r#"{"source": "builtin:demo", "transport": "quic"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = probe(&server, r#"{"source": "builtin:demo", "user": "x"}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("unknown field `user`"), "{}", r.text());
}

#[test]
fn a_probe_with_wrong_credentials_is_a_bad_gateway_without_the_password() {
    let camera = Camera::start(&["--auth", "digest:viewer:right-password"]);
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve_yaml(dir.path(), "streams: {}\n");
    let bad = camera.url_with("viewer", "wrong-password");
    let r = probe(
        &server,
        &format!(r#"{{"source": "{bad}", "transport": "tcp"}}"#),
    );
    assert_eq!(r.status, 502, "{}", r.text());
    let v = json(&r);
    eprintln!("wrong password: {v}");
    assert_eq!(v["kind"], "unauthorized", "{v}");
    assert!(!r.text().contains("wrong-password"), "{}", r.text());
    // A wrong path is not_found; the right password works.
    let r = probe(
        &server,
        &format!(
            r#"{{"source": "{}", "transport": "tcp"}}"#,
            camera
                .url_with("viewer", "right-password")
                .replace("/stream", "/nope")
        ),
    );
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(json(&r)["kind"], "not_found", "{}", r.text());
    let good = camera.url_with("viewer", "right-password");
    let r = probe(
        &server,
        &format!(r#"{{"source": "{good}", "transport": "tcp"}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&r);
    assert!(v["source"].as_str().unwrap().contains("****:****@"), "{v}");
    assert!(!r.text().contains("right-password"), "{}", r.text());
    let log = server.finish_log();
    assert!(
        log.iter()
            .all(|l| !l.contains("wrong-password") && !l.contains("right-password")),
        "{log:#?}"
    );
}

/// At most four probes run at once (429 beyond), behind the API token like `/api/streams`.
#[test]
fn probes_are_bounded_and_need_the_api_token() {
    let camera = Camera::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(
        dir.path(),
        "server: { api_token: \"t0ken-t0ken\" }\nstreams: {}\n",
    );
    let url = server.url("/api/probe");
    let body = format!(
        r#"{{"source": "{}", "transport": "tcp", "timeout": 30}}"#,
        camera.url
    );
    let r = post(&url, Some(&body));
    assert_eq!(r.status, 401, "{}", r.text());
    let auth = Some("Bearer t0ken-t0ken");
    // A frozen camera accepts connections and answers nothing: each probe waits.
    camera.pause();
    let probes: Vec<_> = (0..4)
        .map(|_| {
            let (url, body) = (url.clone(), body.clone());
            std::thread::spawn(move || post_json_with(&url, &body, auth))
        })
        .collect();
    let deadline = std::time::Instant::now() + PATIENCE;
    while metric(&server, "sluice_probes_in_progress") < 4.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the probes never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let r = post_json_with(&url, r#"{"source": "builtin:demo"}"#, auth);
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(
        json(&r)["error"].as_str().unwrap().contains("4 probes"),
        "{}",
        r.text()
    );
    // The camera wakes up: the waiting probes finish, and the slots are free again.
    camera.resume();
    for p in probes {
        let r = p.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(metric(&server, "sluice_probes_in_progress"), 0.0);
    let r = post_json_with(&url, r#"{"source": "builtin:demo"}"#, auth);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn patch_changes_options_each_when_it_should() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(
        dir.path(),
        "streams:\n  cam: { source: \"builtin:demo\", preload: true }\n  \
         spare: { source: \"builtin:demo\", preload: true }\n",
    );
    let url = server.url("/api/streams/cam");
    let info = wait_for_state(&server, "cam", |i| i["state"] == "running");
    let runs = info["runs"].as_u64().unwrap();

    // The orientation applies at once, to the init segment served, without a reconnect.
    let r = patch(&url, r#"{"options": {"orientation": 6}}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json(&r)["options"]["orientation"], 6);
    assert!(json(&r).get("warning").is_none(), "{}", r.text());
    let base = hls_base(&server, "cam");
    wait_for_segments(&base, 1);
    let init = get(&format!("{base}init.mp4")).body;
    let rotate_right: Vec<u8> = [0i32, -65536, 0, 65536, 0, 0]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    assert!(
        init.windows(24).any(|w| w == rotate_right.as_slice()),
        "tkhd matrix"
    );
    assert_eq!(stream_info(&server, "cam")["runs"], runs, "no reconnect");

    // A new transport reconnects at once; timeouts apply from the next connection.
    let r = patch(
        &url,
        r#"{"options": {"transport": "tcp", "connect_timeout": 12, "stall_timeout": 4}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let info = wait_for_state(&server, "cam", |i| {
        i["runs"].as_u64() > Some(runs) && i["state"] == "running"
    });
    let options = &info["options"];
    assert_eq!(
        (
            &options["transport"],
            &options["connect_timeout"],
            &options["stall_timeout"]
        ),
        (&"tcp".into(), &12.0.into(), &4.0.into())
    );
    assert_eq!(options["orientation"], 6, "the other options are kept");
    // The old body, a source alone, still works.
    let r = patch(&url, r#"{"source": "builtin:demo"}"#);
    assert_eq!(r.status, 200, "{}", r.text());

    // Preload off: demand decides, and nothing watches `spare`; on again: it starts.
    let spare = server.url("/api/streams/spare");
    wait_for_state(&server, "spare", |i| i["state"] == "running");
    let r = patch(&spare, r#"{"options": {"preload": false}}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for_state(&server, "spare", |i| i["state"] == "idle");
    let r = patch(&spare, r#"{"options": {"preload": true}}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for_state(&server, "spare", |i| i["state"] == "running");
    // `cam` has a viewer: preload off leaves it running.
    let r = patch(&url, r#"{"options": {"preload": false}}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(stream_info(&server, "cam")["state"], "running");

    // Invalid changes are 400 with the key, and change nothing.
    for (body, key) in [
        (r#"{"options": {"orientation": 9}}"#, Some("orientation")),
        (
            r#"{"options": {"connect_timeout": 0}}"#,
            Some("connect_timeout"),
        ),
        (r#"{"source": "gopher://x"}"#, Some("source")),
        (r#"{"options": {"prelod": true}}"#, None),
        (r#"{"name": "x"}"#, None),
        ("{}", None),
    ] {
        let r = patch(&url, body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(json(&r)["key"].as_str(), key, "{body}: {}", r.text());
    }
    let info = stream_info(&server, "cam");
    assert_eq!(info["options"]["orientation"], 6, "{info}");
    assert_eq!(info["source"], "builtin:demo");
    assert_eq!(
        patch(
            &server.url("/api/streams/nope"),
            "{\"source\": \"builtin:demo\"}"
        )
        .status,
        404
    );
}

#[test]
fn streams_changed_through_the_api_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let yaml =
        "streams:\n  front: { source: \"builtin:demo\" }\n  back: { source: \"builtin:demo\" }\n";
    let mut server = serve_yaml(dir.path(), yaml);
    let r = post(
        &server.url("/api/streams"),
        Some(
            r#"{"name": "lobby", "source": "rtsp://admin:hunter22@127.0.0.1:9/x", "options": {"orientation": 3}}"#,
        ),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(json(&r).get("warning").is_none(), "{}", r.text());
    assert_eq!(delete(&server.url("/api/streams/front")).status, 204);
    let r = patch(
        &server.url("/api/streams/back"),
        r#"{"options": {"orientation": 8}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // One private file next to the config, and no temporary left behind.
    let state = dir.path().join("sluice-streams.yaml");
    assert_eq!(names_in(dir.path()), ["sluice-streams.yaml", "sluice.yaml"]);
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let saved = std::fs::read_to_string(&state).unwrap();
    eprintln!("{saved}");
    // The credentials are stored to reconnect (as in the config file), never logged.
    assert!(
        saved.contains("rtsp://admin:hunter22@127.0.0.1:9/x"),
        "{saved}"
    );
    assert!(saved.contains("removed:\n- front"), "{saved}");
    let log = server.finish_log();
    assert!(log.iter().all(|l| !l.contains("hunter22")), "{log:#?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("sluice.yaml")).unwrap(),
        yaml
    );

    // Restarted with the same config: the API's changes are there.
    let mut server = serve_yaml(dir.path(), yaml);
    assert_eq!(stream_names(&server), ["back", "lobby"]);
    assert_eq!(get(&server.url("/api/streams/front")).status, 404);
    let lobby = stream_info(&server, "lobby");
    assert_eq!(lobby["source"], "rtsp://****:****@127.0.0.1:9/x");
    assert_eq!(lobby["options"]["orientation"], 3);
    assert_eq!(stream_info(&server, "back")["options"]["orientation"], 8);
    // Back to the config file's entry: `back` leaves the file; `front` is added back.
    let r = patch(
        &server.url("/api/streams/back"),
        r#"{"options": {"orientation": 1}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(
        &server.url("/api/streams"),
        Some(r#"{"name": "front", "source": "builtin:demo"}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(delete(&server.url("/api/streams/lobby")).status, 204);
    let saved = std::fs::read_to_string(&state).unwrap();
    assert!(
        saved.ends_with("streams: {}\nremoved: []\n"),
        "nothing differs from the config file: {saved}"
    );
    let log = server.finish_log();
    assert!(
        log.iter()
            .any(|l| l.contains("removed through the API") && l.contains("front")),
        "{log:#?}"
    );
    let server = serve_yaml(dir.path(), yaml);
    assert_eq!(stream_names(&server), ["back", "front"]);
}

#[test]
fn saving_can_be_off_and_a_failed_save_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(dir.path(), "server: { state_file: null }\nstreams: {}\n");
    let r = post(
        &server.url("/api/streams"),
        Some(r#"{"name": "lobby", "source": "builtin:demo"}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(json(&r).get("warning").is_none(), "{}", r.text());
    assert_eq!(names_in(dir.path()), ["sluice.yaml"]);
    drop(server);

    // A directory that does not exist: every change works, and says it was not saved.
    let dir = tempfile::tempdir().unwrap();
    let server = serve_yaml(
        dir.path(),
        "server: { state_file: \"missing/streams.yaml\" }\nstreams: {}\n",
    );
    let r = post(
        &server.url("/api/streams"),
        Some(r#"{"name": "lobby", "source": "builtin:demo"}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let warning = json(&r)["warning"].as_str().unwrap_or_default().to_string();
    assert!(
        warning.contains("could not be saved") && warning.contains("missing/streams.yaml"),
        "{warning}"
    );
    let r = patch(
        &server.url("/api/streams/lobby"),
        r#"{"options": {"orientation": 2}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(json(&r)["warning"].is_string(), "{}", r.text());
    let r = delete(&server.url("/api/streams/lobby"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(json(&r)["warning"].is_string(), "{}", r.text());
    assert!(stream_names(&server).is_empty());
}
