//! Credentials out of every boundary: API responses, error messages, CLI output and log lines
//! (ours and those of dependencies, which pass through the same subscriber writer).
//!
//! Three rules apply to any text, so nothing depends on a URL being well formed:
//! - **userinfo**: in `scheme://…@host`, everything between `://` and the *last* `@` of the
//!   whitespace-delimited token becomes `****:****`. A password with `@`, `/`, `#` or `?` that
//!   was not percent-encoded breaks URL parsers (they end the authority early and print the rest
//!   as a path or fragment); taking the last `@` hides all of it.
//! - **secret parameters**: `key=value` where the key ends in `password`, `passwd`, `pass`,
//!   `pwd`, `token`, `auth`, `key`, `secret`, `user`, `username`, `login`, `sig`, `signature`,
//!   `credential(s)` or `session(id)` (case-insensitive, `_`/`-`/`.` ignored) has its value
//!   replaced; `Basic`/`Bearer` authorization values too.
//! - **known secrets**: every source URL the server parses registers its password and secret
//!   parameter values ([`register_secrets`]); any later occurrence of them in any text is
//!   replaced, whatever surrounds it.

use std::borrow::Cow;
use std::sync::{LazyLock, RwLock};

use regex::{Captures, Regex};

/// What a secret becomes.
const MASK: &str = "****";
/// Known secrets shorter than this are only redacted by the patterns (replacing every "ab" in
/// every log line would garble the logs and hide nothing a pattern does not).
const MIN_KNOWN_SECRET: usize = 4;
/// The registry keeps at most this many secrets (sources are added by an operator; the bound
/// keeps a misbehaving API client from growing it without limit).
const MAX_KNOWN_SECRETS: usize = 4096;

static USERINFO: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b([a-z][a-z0-9+.-]*://)(\S*)@").expect("static regex"));
/// `key=value` (or `key="value"`) where the key ends in a secret name, case-insensitive.
static PARAM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)([A-Za-z0-9_.-]*?(?:password|passwd|pass|pwd|pw|token|auth|key|secret|user|username|login|sig|signature|credentials?|sessionid))=("[^"]*"|[^&;\s"',#]*)"#,
    )
    .expect("static regex")
});
static AUTH_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(basic|bearer)\s+([A-Za-z0-9._~+/=-]{8,})").expect("static")
});
static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());
/// Text that starts with a URL scheme.
static SCHEME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://").expect("static regex"));

/// Hides the user and password a URL parser finds in `text`, however the text spells its
/// authority (`http:/user:pass@host` with one slash is read as `http://user:pass@host`).
fn mask_parsed_userinfo(text: &str) -> Cow<'_, str> {
    match url::Url::parse(text) {
        Ok(mut url)
            if (!url.username().is_empty() && url.username() != MASK)
                || url.password().is_some_and(|p| p != MASK) =>
        {
            let _ = url.set_username(MASK);
            if url.password().is_some() {
                let _ = url.set_password(Some(MASK));
            }
            Cow::Owned(url.to_string())
        }
        _ => Cow::Borrowed(text),
    }
}

/// Hides credentials in any text (see the module docs). When the whole text is a URL the
/// result is also normalized as a URL, as the reference prints it (`https://****:****@foo.bar/`).
pub fn redact(text: &str) -> String {
    // URL parsers drop ASCII tabs and newlines anywhere in a URL (WHATWG URL), so a password
    // may sit across one ("rtsp://user\n:pass@cam"): a URL is redacted as they will read it.
    let cleaned;
    let text = if SCHEME.is_match(text) && text.contains(['\t', '\n', '\r']) {
        cleaned = text.replace(['\t', '\n', '\r'], "");
        cleaned.as_str()
    } else {
        text
    };
    // A source URL is one token even if its password holds a space: hide up to its last '@'.
    let whole;
    let text = match (text.find("://"), text.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme && !text.contains('\n') => {
            whole = format!("{}://****:****{}", &text[..scheme], &text[at..]);
            whole.as_str()
        }
        _ => text,
    };
    let masked = redact_text(text);
    let redacted = mask_parsed_userinfo(&masked);
    match url::Url::parse(&redacted) {
        Ok(url) if !url.cannot_be_a_base() && !redacted.contains(char::is_whitespace) => {
            url.to_string()
        }
        _ => redacted.into_owned(),
    }
}

/// Hides credentials in free text (log lines, error messages) without reformatting it.
pub fn redact_text(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    if text.contains("://") {
        let replaced = USERINFO.replace_all(&out, |c: &Captures| {
            let userinfo = &c[2];
            let masked = if userinfo.contains(':') {
                "****:****"
            } else {
                MASK
            };
            format!("{}{masked}@", &c[1])
        });
        if let Cow::Owned(s) = replaced {
            out = Cow::Owned(s);
        }
    }
    if out.contains('=') {
        let replaced = PARAM.replace_all(&out, |c: &Captures| {
            if c[2].is_empty() || &c[2] == MASK {
                c[0].to_string()
            } else {
                format!("{}={MASK}", &c[1])
            }
        });
        if let Cow::Owned(s) = replaced {
            out = Cow::Owned(s);
        }
    }
    let replaced = AUTH_HEADER.replace_all(&out, |c: &Captures| format!("{} {MASK}", &c[1]));
    if let Cow::Owned(s) = replaced {
        out = Cow::Owned(s);
    }
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    for secret in known.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), MASK));
        }
    }
    out
}

/// Remembers the secrets in a source URL (its password, and the values of secret
/// parameters, raw and percent-decoded) so that [`redact_text`] hides them wherever they
/// appear later, even outside a URL.
pub fn register_secrets(source: &str) {
    // As URL parsers read it (see `redact`).
    let source = &source.replace(['\t', '\n', '\r'], "");
    let mut found = Vec::new();
    if let Ok(url) = url::Url::parse(source)
        && let Some(password) = url.password()
    {
        found.push(password.to_string());
    }
    if let Some(c) = USERINFO.captures(source)
        && let Some((_, password)) = c[2].split_once(':')
    {
        found.push(password.to_string());
    }
    for c in PARAM.captures_iter(source) {
        found.push(c[2].trim_matches('"').to_string());
    }
    let mut decoded: Vec<String> = found
        .iter()
        .filter_map(|s| percent_decode(s))
        .filter(|d| !found.contains(d))
        .collect();
    found.append(&mut decoded);
    found.retain(|s| s.len() >= MIN_KNOWN_SECRET && s != MASK);
    if found.is_empty() {
        return;
    }
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    for secret in found {
        if !known.contains(&secret) && known.len() < MAX_KNOWN_SECRETS {
            known.push(secret);
        }
    }
    // Longest first, so a secret that contains another is replaced whole.
    known.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Percent-decodes `s`; `None` unless the result is valid UTF-8 and every `%` starts an escape.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A `tracing_subscriber` writer that redacts each formatted event before it reaches stderr.
/// The fmt layer writes one whole event per `write` call, so patterns never straddle calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct RedactingStderr;

impl std::io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(redact_text(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingStderr;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingStderr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_like_the_reference() {
        assert_eq!(
            redact("https://abcd:efgh@foo.bar"),
            "https://****:****@foo.bar/"
        );
        assert_eq!(
            redact("http://foo.bar/?param1=abcd&password=efgh"),
            "http://foo.bar/?param1=abcd&password=****"
        );
        assert_eq!(
            redact("rtsp://user:p%40ss@cam.local:554/s1?auth=xyz"),
            "rtsp://****:****@cam.local:554/s1?auth=****"
        );
        assert_eq!(redact("rtsp://cam.local/s1"), "rtsp://cam.local/s1");
        assert_eq!(redact("not a url://u:p@x"), "not a url://****:****@x");
    }

    /// Found by the `config` fuzz target: URL parsers drop a newline or tab inside a URL, so
    /// the password after it is a password (fuzz/regressions/config/newline_in_userinfo).
    #[test]
    fn a_newline_inside_the_userinfo_does_not_hide_the_password_from_redaction() {
        for url in [
            "rtsp://use\n:s3cr3t@cam.local/s1",
            "rtsp://user:s3c\tr3t@cam/x",
        ] {
            let shown = redact(url);
            assert!(
                !shown.contains("s3cr3t") && !shown.contains("r3t@"),
                "{shown}"
            );
            assert!(shown.contains("cam"), "{shown}");
        }
    }

    #[test]
    fn hides_passwords_that_break_url_parsing() {
        // Unencoded '@', '/', '#', '?' in the password: URL parsers end the authority early.
        for (url, secret) in [
            ("rtsp://admin:p@ss/w#rd?@cam.local/s1", "ss/w#rd?"),
            ("rtsp://admin:a#b@cam.local/s1", "a#b"),
            ("rtsp://admin:x?y=z@cam.local/s1", "x?y=z"),
            ("rtsp://admin:spx ace@cam.local/s1", "spx"),
        ] {
            let r = redact(url);
            assert!(!r.contains(secret), "{url} -> {r}");
            assert!(r.contains("cam.local"), "{url} -> {r}");
        }
    }

    #[test]
    fn hides_secret_query_parameters() {
        for key in [
            "password",
            "pwd",
            "passwd",
            "token",
            "auth",
            "key",
            "api_key",
            "apiKey",
            "access_token",
            "secret",
            "user",
            "username",
            "sig",
            "PASSWORD",
        ] {
            let r = redact(&format!("rtsp://cam/s?channel=1&{key}=hunter2x&x=y"));
            assert!(!r.contains("hunter2x"), "{key}: {r}");
            assert!(r.contains("channel=1") && r.contains("x=y"), "{key}: {r}");
        }
        // Not secrets.
        let line = "keyframe=true segments=3 channel=1";
        assert_eq!(redact_text(line), line);
    }

    #[test]
    fn hides_text_in_log_lines_and_messages() {
        let line = r#"WARN retina: bad response url="rtsp://cam:554/s?token=abc123&x=1" from Authorization: Basic YWRtaW46aHVudGVyMg=="#;
        let r = redact_text(line);
        assert!(!r.contains("abc123"), "{r}");
        assert!(!r.contains("YWRtaW46aHVudGVyMg"), "{r}");
        assert!(r.contains("x=1"));
        let r = redact_text("digest username=\"admin\" realm=\"cam\"");
        assert!(!r.contains("admin"), "{r}");
    }

    #[test]
    fn hides_registered_secrets_anywhere() {
        register_secrets("rtsp://u:Zq%2Fsecret9@cam/s?pwd=Other-Secret-7");
        let r = redact_text("error: wrong password Zq/secret9 and Zq%2Fsecret9, Other-Secret-7");
        assert_eq!(r, "error: wrong password **** and ****, ****");
    }
}
