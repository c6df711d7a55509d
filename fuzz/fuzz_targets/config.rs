//! The YAML config parser on arbitrary text, and on arbitrary source URLs inside a valid
//! config: errors name a real line, and never show a URL's password.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sluice::config::{Config, ConfigError};
use sluice::redact::redact;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    if mode & 1 == 0 {
        check(&text);
        return;
    }
    // The bytes as a stream's source URL.
    let yaml = format!(
        "streams:\n  cam:\n    source: \"{}\"\n    preload: true\n",
        yaml_escape(&text)
    );
    let message = check(&yaml);
    if let Ok(url) = url::Url::parse(&text)
        && let Some(password) = url.password().filter(|p| !p.chars().all(|c| c == '*'))
    {
        let leak = format!(":{password}@");
        let mut bare = url.clone();
        let _ = bare.set_username("");
        let _ = bare.set_password(None);
        if bare.as_str().contains(&leak) {
            // The same text also appears outside the credentials (in the path or query).
            return;
        }
        assert!(
            !redact(&text).contains(&leak),
            "redact leaks the password {password:?}: {}",
            redact(&text)
        );
        if let Some(message) = message {
            assert!(
                !message.contains(&leak),
                "the error leaks the password: {message}"
            );
        }
    }
});

/// Parses `text`; returns the error message, checking that it names a line of the text.
fn check(text: &str) -> Option<String> {
    match Config::parse(text, Path::new("sluice.yaml")) {
        Ok(config) => {
            assert!(config.hls.part_duration <= config.hls.segment_duration);
            None
        }
        Err(e) => {
            if let ConfigError::Invalid { line, .. } = &e {
                assert!(
                    *line <= text.lines().count(),
                    "line {line} is not in the text"
                );
            }
            Some(e.to_string())
        }
    }
}

/// The contents of a YAML double-quoted scalar holding `s`.
fn yaml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if u32::from(c) <= 0xffff => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out
}
