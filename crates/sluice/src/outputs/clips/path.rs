//! Where a recording may be written: a file name inside one of the allowed directories, reached
//! without following a symlink below that directory.
//!
//! This module works on the text of the path only: it checks the limits the kernel would refuse
//! later (NUL bytes, `NAME_MAX`, `PATH_MAX`), applies `.` and `..`, and picks the allowed
//! directory the path is in. [`super::files`] then opens that directory and walks the rest
//! with descriptors, so what is checked is what is written.

use std::path::{Component, Path, PathBuf};

/// Longest file name most filesystems take (Linux `NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// Longest path the kernel takes, without the terminating NUL (Linux `PATH_MAX` - 1).
pub const PATH_MAX: usize = 4095;

/// Why a recording path was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    /// Not a file path at all.
    #[error("invalid recording path {0:?}: give a file name such as \"front/clip.mp4\"")]
    Invalid(String),
    /// A path no filesystem takes: a NUL byte, a name or a path over the kernel's limits.
    #[error("invalid recording path {path:?}: {reason}")]
    Unusable {
        /// The path as given (cut short when very long).
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The path is outside every allowed directory.
    #[error("recording path {path:?} resolves outside the allowed directories ({allowed})")]
    Outside {
        /// The path as given.
        path: String,
        /// The allowed directories.
        allowed: String,
    },
    /// The path goes through a symlink inside an allowed directory.
    #[error(
        "recording path {path:?} goes through the symlink {link:?}: symlinks inside the allowed \
         directories are not followed; name the real directory instead"
    )]
    Symlink {
        /// The path as given.
        path: String,
        /// The symlink, relative to the allowed directory.
        link: String,
    },
    /// No directory is allowed.
    #[error("recording is disabled: server.record_dirs is empty")]
    NoDirs,
    /// A regular file is at the target and replacing it was not asked for.
    #[error("{path} already exists: send \"overwrite\": true to replace it")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Something other than a regular file is at the target.
    #[error(
        "{path} exists and is a {kind}, not a regular file: a recording replaces only regular files"
    )]
    NotAFile {
        /// The target.
        path: PathBuf,
        /// What is there ("directory", "FIFO", "symlink", …).
        kind: &'static str,
    },
    /// Another recording is writing the same file.
    #[error("{path} is being recorded by stream {stream:?}: one recording per file at a time")]
    Busy {
        /// The file.
        path: PathBuf,
        /// The stream recording it.
        stream: String,
    },
    /// An allowed directory or a parent could not be created or opened.
    #[error("cannot prepare the directory for {path:?}: {message}")]
    Io {
        /// The path as given.
        path: String,
        /// The cause.
        message: String,
    },
}

/// A recording's place, as text: the directory the walk starts from, the directories below it
/// and the file name (each a single normal component).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The directory the walk starts from: an allowed directory as configured (a symlink
    /// configured there is followed: it is the administrator's), or for the CLI the parent of
    /// the output file.
    pub root: PathBuf,
    /// The root with symlinks resolved, for the paths shown to users.
    pub shown_root: PathBuf,
    /// Directories between the root and the file, created if missing.
    pub dirs: Vec<String>,
    /// The file name.
    pub name: String,
}

impl Location {
    /// The full path shown to users: resolved root, directories, name.
    pub fn shown(&self) -> PathBuf {
        let mut path = self.shown_root.clone();
        path.extend(&self.dirs);
        path.push(&self.name);
        path
    }
}

/// Places `path`: a relative path is taken inside the first allowed directory, an absolute one
/// must be inside one of them (as configured or with symlinks resolved). `.` and `..` are
/// applied to the text and may not leave the directory. The allowed directories are created if
/// missing. `None` (the CLI) allows any path: its parent directory is the root.
pub fn locate(path: &str, allowed: Option<&[PathBuf]>) -> Result<Location, PathError> {
    check_limits(path)?;
    let invalid = || PathError::Invalid(path.to_string());
    if path.is_empty() || path.ends_with('/') {
        return Err(invalid());
    }
    let io = |e: std::io::Error| PathError::Io {
        path: path.to_string(),
        message: e.to_string(),
    };
    let given = Path::new(path);
    let Some(dirs) = allowed else {
        let name = match given.components().next_back() {
            Some(Component::Normal(name)) => name.to_str().ok_or_else(invalid)?.to_string(),
            _ => return Err(invalid()),
        };
        let root = match given.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&root).map_err(io)?;
        return Ok(Location {
            shown_root: root.canonicalize().map_err(io)?,
            root,
            dirs: Vec::new(),
            name,
        });
    };
    if dirs.is_empty() {
        return Err(PathError::NoDirs);
    }
    let outside = || PathError::Outside {
        path: path.to_string(),
        allowed: dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    };
    let cwd = std::env::current_dir().map_err(io)?;
    // (root as configured, the same made absolute, the same with symlinks resolved)
    let roots = dirs
        .iter()
        .map(|d| {
            std::fs::create_dir_all(d)?;
            Ok((d.clone(), normalize(&cwd.join(d)), d.canonicalize()?))
        })
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(io)?;
    let (root, shown_root, rest) = if given.is_absolute() {
        let wanted = &normalize(given);
        roots
            .iter()
            .flat_map(|(root, absolute, resolved)| {
                [absolute, resolved].into_iter().filter_map(move |prefix| {
                    let rest = wanted.strip_prefix(prefix).ok()?;
                    Some((
                        prefix.components().count(),
                        root,
                        resolved,
                        rest.to_path_buf(),
                    ))
                })
            })
            // The innermost allowed directory, when they nest.
            .max_by_key(|(depth, ..)| *depth)
            .map(|(_, root, resolved, rest)| (root.clone(), resolved.clone(), rest))
            .ok_or_else(outside)?
    } else {
        let (root, _, resolved) = &roots[0];
        let mut rest = PathBuf::new();
        for c in given.components() {
            match c {
                Component::Normal(name) => rest.push(name),
                Component::CurDir => {}
                Component::ParentDir => {
                    if !rest.pop() {
                        return Err(outside());
                    }
                }
                Component::RootDir | Component::Prefix(_) => return Err(invalid()),
            }
        }
        (root.clone(), resolved.clone(), rest)
    };
    let mut names = rest
        .components()
        .map(|c| c.as_os_str().to_str().map(str::to_string))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(invalid)?;
    let name = names.pop().ok_or_else(invalid)?;
    Ok(Location {
        root,
        shown_root,
        dirs: names,
        name,
    })
}

/// Refuses what every filesystem refuses, as the client's mistake rather than an I/O error.
fn check_limits(path: &str) -> Result<(), PathError> {
    let unusable = |reason: String| PathError::Unusable {
        path: shorten(path, 80),
        reason,
    };
    if path.contains('\0') {
        return Err(unusable("it contains a NUL byte".into()));
    }
    if path.len() > PATH_MAX {
        return Err(unusable(format!(
            "the path is {} bytes long; the limit is {PATH_MAX}",
            path.len()
        )));
    }
    if let Some(long) = path.split('/').find(|c| c.len() > NAME_MAX) {
        return Err(unusable(format!(
            "the name {:?} is {} bytes long; the limit is {NAME_MAX}",
            shorten(long, 40),
            long.len()
        )));
    }
    Ok(())
}

/// `text` cut to at most `max` bytes (on a character boundary), with "…" when cut.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    format!("{}…", prefix(text, max))
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub(crate) fn prefix(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Applies `.` and `..` to an absolute path's text (`..` at the root stays at the root).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(l: &Location) -> (Vec<&str>, &str) {
        (l.dirs.iter().map(String::as_str).collect(), l.name.as_str())
    }

    #[test]
    fn relative_and_absolute_paths_inside_are_placed_in_their_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rec");
        let allowed = [root.clone()];
        let l = locate("front/2026/clip.mp4", Some(&allowed)).unwrap();
        assert_eq!(parts(&l), (vec!["front", "2026"], "clip.mp4"));
        assert_eq!(l.root, root);
        assert!(root.is_dir(), "the allowed directory is created");
        assert_eq!(
            l.shown(),
            root.canonicalize().unwrap().join("front/2026/clip.mp4")
        );
        assert!(
            !root.join("front").exists(),
            "directories are created later"
        );
        for same in [
            "./a/../b.mp4".to_string(),
            root.join("a/../b.mp4").display().to_string(),
            root.canonicalize()
                .unwrap()
                .join("b.mp4")
                .display()
                .to_string(),
        ] {
            let l = locate(&same, Some(&allowed)).unwrap();
            assert_eq!(parts(&l), (vec![], "b.mp4"), "{same}");
        }
        // Nested allowed directories: the innermost one is the root.
        let inner = root.join("inner");
        let nested = [root.clone(), inner.clone()];
        let l = locate(inner.join("x.mp4").to_str().unwrap(), Some(&nested)).unwrap();
        assert_eq!((&l.root, parts(&l).1), (&inner, "x.mp4"));
    }

    #[test]
    fn traversal_and_absolute_paths_outside_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rec");
        let allowed = [root.clone()];
        for bad in [
            "../x.mp4".to_string(),
            "a/../../x.mp4".to_string(),
            "/etc/x.mp4".to_string(),
            dir.path().join("outside/x.mp4").display().to_string(),
            root.join("../x.mp4").display().to_string(),
        ] {
            assert!(
                matches!(locate(&bad, Some(&allowed)), Err(PathError::Outside { .. })),
                "{bad}"
            );
        }
        for bad in ["", "dir/", ".", "a/..", root.to_str().unwrap()] {
            assert!(
                matches!(locate(bad, Some(&allowed)), Err(PathError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert_eq!(locate("x.mp4", Some(&[])), Err(PathError::NoDirs));
    }

    #[test]
    fn limits_are_the_clients_mistake() {
        let allowed = [PathBuf::from("/nonexistent-not-created")];
        let reason = |p: &str| match locate(p, Some(&allowed)) {
            Err(PathError::Unusable { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason("a\0.mp4"), "it contains a NUL byte");
        let name = "é".repeat(128);
        assert_eq!(
            reason(&format!("d/{name}")),
            format!(
                "the name \"{}…\" is 256 bytes long; the limit is 255",
                "é".repeat(20)
            )
        );
        let long = "d/".repeat(2048);
        assert_eq!(
            reason(&long),
            "the path is 4096 bytes long; the limit is 4095"
        );
        assert!(!Path::new("/nonexistent-not-created").exists());
        let ok = format!("{}/{}", "n".repeat(255), "m".repeat(255));
        assert!(check_limits(&ok).is_ok());
    }

    #[test]
    fn the_cli_records_into_the_outputs_parent() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("new/clip.mp4");
        let l = locate(out.to_str().unwrap(), None).unwrap();
        assert_eq!(l.root, dir.path().join("new"));
        assert!(l.root.is_dir());
        assert_eq!(parts(&l), (vec![], "clip.mp4"));
        let l = locate("clip.mp4", None).unwrap();
        assert_eq!(l.root, Path::new("."));
        assert!(matches!(locate("..", None), Err(PathError::Invalid(_))));
    }
}
