//! The state file: streams added, changed or removed through the API, saved so they survive a
//! restart.
//!
//! Sluice never writes the user's config file (its comments, order and layout are the user's).
//! The state file, `server.state_file` (default `sluice-streams.yaml` next to the config file),
//! holds the *difference* between the streams running now and the config file's `streams:`:
//! every stream that is not in the config file or differs from its entry there, in full, and
//! the names of config streams that were removed. At startup it is applied on top of the config
//! file's streams, so a stream saved there wins over the config file's entry of the same name.
//! A change that brings a stream back to its config entry drops it from the file.
//!
//! The file is rewritten after every change, atomically: a temporary in the same directory
//! (created exclusively, mode 0600: it holds camera credentials, as the config file does),
//! written, synced, renamed over the file, and the directory synced. Writes are serialized,
//! and each one saves the hub's streams as they are when it runs, so the file after the last
//! write reflects every change made before it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::config::{StateFileSetting, StreamConfig, line_of, validate_streams};
use crate::hub::Hub;

/// The state file's name when `server.state_file` is not set.
pub const DEFAULT_NAME: &str = "sluice-streams.yaml";

/// A state file larger than this is refused.
const MAX_STATE_BYTES: u64 = 4 * 1024 * 1024;

/// What the file starts with.
const HEADER: &str = "\
# Written by Sluice: the streams added, changed or removed through its API or web page, as a
# difference from the config file's `streams:` (applied on top of them at startup; an entry
# here wins over the config file's entry of the same name). Rewritten after every change.
";

/// A state file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("state file {path}: {message}")]
pub struct StateFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong (credentials hidden), with the line where known.
    pub message: String,
}

/// Where the state file is, from `server.state_file` and the config file's path (`None`
/// without a config file): `None` when saving is off. A relative path is taken from the config
/// file's directory (the working directory without one). The config file itself is refused.
pub fn resolve(
    setting: &StateFileSetting,
    config_path: Option<&Path>,
) -> Result<Option<PathBuf>, StateFileError> {
    let dir = config_path
        .and_then(Path::parent)
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let path = match setting {
        StateFileSetting::Off => return Ok(None),
        StateFileSetting::Default => dir.join(DEFAULT_NAME),
        StateFileSetting::Path(p) => dir.join(p),
    };
    if let Some(config) = config_path
        && same_file(config, &path)
    {
        return Err(StateFileError {
            path,
            message: "server.state_file names the config file itself: Sluice never rewrites \
                      the config file; name another file"
                .into(),
        });
    }
    Ok(Some(path))
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => a == b,
    }
}

/// The state file's contents: how the streams differ from the config file's.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Changes {
    /// Streams added or changed, each in full (a config file entry's format).
    #[serde(default, deserialize_with = "crate::config::unique_names")]
    pub streams: BTreeMap<String, StreamConfig>,
    /// Streams of the config file that were removed.
    #[serde(default)]
    pub removed: BTreeSet<String>,
}

impl Changes {
    /// How `now` differs from `base`.
    pub fn between(
        base: &BTreeMap<String, StreamConfig>,
        now: &BTreeMap<String, StreamConfig>,
    ) -> Changes {
        Changes {
            streams: now
                .iter()
                .filter(|(name, config)| base.get(*name) != Some(*config))
                .map(|(name, config)| (name.clone(), config.clone()))
                .collect(),
            removed: base
                .keys()
                .filter(|name| !now.contains_key(*name))
                .cloned()
                .collect(),
        }
    }

    /// `base` with the changes applied: removed streams gone, saved ones added or replacing
    /// the config file's entry.
    pub fn apply(&self, base: &BTreeMap<String, StreamConfig>) -> BTreeMap<String, StreamConfig> {
        let mut out = base.clone();
        for name in &self.removed {
            out.remove(name);
        }
        out.extend(self.streams.clone());
        out
    }

    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty() && self.removed.is_empty()
    }

    /// Reads and validates a state file; a missing file has no changes.
    pub fn load(path: &Path) -> Result<Changes, StateFileError> {
        let error = |message: String| StateFileError {
            path: path.to_owned(),
            message,
        };
        let data = match crate::read_bounded::read_regular_file(path, MAX_STATE_BYTES) {
            Ok(data) => data,
            Err(crate::read_bounded::ReadError::Io(e))
                if e.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(Changes::default());
            }
            Err(e) => return Err(error(format!("cannot read it: {e}"))),
        };
        let text = String::from_utf8(data).map_err(|_| error("not UTF-8 text".into()))?;
        Changes::parse(&text).map_err(error)
    }

    /// Parses and validates state file text; the error names the key and its line.
    pub fn parse(text: &str) -> Result<Changes, String> {
        let changes: Changes = if text.lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#')
        }) {
            Changes::default()
        } else {
            serde_yaml_ng::from_str(text)
                .map_err(|e| crate::redact::redact_text(&e.to_string()).into_owned())?
        };
        validate_streams(&changes.streams).map_err(|p| {
            format!(
                "{}: {} at line {}",
                p.key,
                crate::redact::redact_text(&p.message),
                line_of(text, &p.key)
            )
        })?;
        Ok(changes)
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let body = serde_yaml_ng::to_string(self).unwrap_or_default();
        format!("{HEADER}{body}")
    }

    /// Writes the file atomically with mode 0600 (see the module documentation).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        write_atomically(path, self.to_text().as_bytes())
    }
}

/// Replaces `path` with `contents`: a temporary in the same directory, created exclusively
/// with mode 0600, written and synced, renamed over `path`, then the directory synced. On
/// failure the temporary is removed and `path` is untouched.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"))?;
    let token = crate::token::new_token();
    let temp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), &token[..16]));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)?;
        // Exactly 0600, whatever the umask.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written?;
    // The rename is durable once the directory is.
    std::fs::File::open(dir)?.sync_all()
}

/// The state file of a running server: where it is, and the config file's streams it is the
/// difference from.
pub struct StateFile {
    path: PathBuf,
    base: BTreeMap<String, StreamConfig>,
    writing: Mutex<()>,
}

impl StateFile {
    /// The state file at `path`, relative to the config file's streams `base`.
    pub fn new(path: PathBuf, base: BTreeMap<String, StreamConfig>) -> StateFile {
        StateFile {
            path,
            base,
            writing: Mutex::new(()),
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Saves how the hub's streams differ from the config file's now. A failure is logged and
    /// returned as a warning for the API response: the change itself stays in effect.
    pub async fn save(self: &Arc<Self>, hub: &Arc<Hub>) -> Result<(), String> {
        let (this, hub) = (Arc::clone(self), Arc::clone(hub));
        let saved = tokio::task::spawn_blocking(move || {
            let _one_writer = this.writing.lock().unwrap_or_else(|e| e.into_inner());
            let now = hub
                .list()
                .iter()
                .map(|s| (s.name().to_string(), s.config()))
                .collect();
            Changes::between(&this.base, &now).write(&this.path)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        saved.map_err(|e| {
            tracing::warn!(path = %self.path.display(), "cannot save the streams changed through the API: {e}");
            format!(
                "the change is in effect but could not be saved to {} ({e}): it will be lost \
                 when the server restarts",
                self.path.display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams(entries: &[(&str, &str)]) -> BTreeMap<String, StreamConfig> {
        entries
            .iter()
            .map(|(n, s)| (n.to_string(), StreamConfig::new(*s)))
            .collect()
    }

    #[test]
    fn the_difference_round_trips_through_the_file() {
        let base = streams(&[("front", "builtin:demo"), ("back", "rtsp://cam/1")]);
        let mut now = streams(&[("back", "rtsp://cam/1"), ("lobby", "rtsp://u:hunter22@x/1")]);
        now.get_mut("back").unwrap().orientation = 6;
        let changes = Changes::between(&base, &now);
        assert_eq!(
            changes.streams.keys().collect::<Vec<_>>(),
            ["back", "lobby"]
        );
        assert_eq!(changes.removed.iter().collect::<Vec<_>>(), ["front"]);
        assert_eq!(changes.apply(&base), now);
        let text = changes.to_text();
        assert!(text.starts_with("# Written by Sluice"), "{text}");
        assert_eq!(Changes::parse(&text).unwrap(), changes, "{text}");
        // Back to the config file's entries: nothing left to save.
        assert!(Changes::between(&base, &base).is_empty());
        assert_eq!(Changes::parse(HEADER).unwrap(), Changes::default());
    }

    #[test]
    fn a_bad_state_file_names_the_key_and_line_without_secrets() {
        let e = Changes::parse(
            "streams:\n  cam: { source: \"rtsp://u:s3cretpw@x/1\", orientation: 9 }\n",
        )
        .unwrap_err();
        assert_eq!(
            e,
            "streams.cam.orientation: 9 is not an EXIF orientation (1..=8) at line 2"
        );
        let e = Changes::parse("streams: {}\nremoved: [a]\nextra: 1\n").unwrap_err();
        assert!(e.contains("unknown field `extra`"), "{e}");
        let e = Changes::parse(
            "streams:\n  a: { source: \"builtin:demo\" }\n  a: { source: \"builtin:demo\" }\n",
        )
        .unwrap_err();
        assert!(e.contains("duplicate stream name"), "{e}");
        let e = Changes::parse("streams:\n  cam: \"rtsp://u:s3cretpw@x/1\"\n").unwrap_err();
        assert!(!e.contains("s3cretpw"), "{e}");
    }

    #[test]
    fn writes_are_atomic_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_NAME);
        assert_eq!(Changes::load(&path).unwrap(), Changes::default());
        let changes = Changes::between(&BTreeMap::new(), &streams(&[("a", "builtin:demo")]));
        changes.write(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        changes.write(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(Changes::load(&path).unwrap(), changes);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [DEFAULT_NAME], "no temporary left behind");
        // A directory that does not exist: an error, and nothing written.
        let missing = dir.path().join("missing/x.yaml");
        assert!(changes.write(&missing).is_err());
    }

    #[test]
    fn the_path_defaults_next_to_the_config_and_is_never_the_config() {
        let config = Path::new("/etc/sluice/sluice.yaml");
        let at = |s: &StateFileSetting, c: Option<&Path>| resolve(s, c).unwrap();
        assert_eq!(
            at(&StateFileSetting::Default, Some(config)),
            Some(PathBuf::from("/etc/sluice/sluice-streams.yaml"))
        );
        assert_eq!(
            at(&StateFileSetting::Default, None),
            Some(PathBuf::from("./sluice-streams.yaml"))
        );
        assert_eq!(
            at(&StateFileSetting::Default, Some(Path::new("sluice.yaml"))),
            Some(PathBuf::from("./sluice-streams.yaml"))
        );
        assert_eq!(
            at(&StateFileSetting::Path("state/s.yaml".into()), Some(config)),
            Some(PathBuf::from("/etc/sluice/state/s.yaml"))
        );
        assert_eq!(
            at(
                &StateFileSetting::Path("/var/lib/s.yaml".into()),
                Some(config)
            ),
            Some(PathBuf::from("/var/lib/s.yaml"))
        );
        assert_eq!(at(&StateFileSetting::Off, Some(config)), None);
        let e = resolve(&StateFileSetting::Path("sluice.yaml".into()), Some(config)).unwrap_err();
        assert!(e.message.contains("config file itself"), "{e}");
    }
}
