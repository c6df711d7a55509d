//! Where a recording may be written: inside one of the allowed directories, after `..` and
//! symlinks are resolved.

use std::path::{Component, Path, PathBuf};

/// Why a path was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    /// Not a file path at all.
    #[error("invalid recording path {0:?}: give a file name such as \"front/clip.mp4\"")]
    Invalid(String),
    /// The resolved path is outside every allowed directory.
    #[error("recording path {path:?} resolves outside the allowed directories ({allowed})")]
    Outside {
        /// The path as given.
        path: String,
        /// The allowed directories.
        allowed: String,
    },
    /// No directory is allowed.
    #[error("recording is disabled: server.record_dirs is empty")]
    NoDirs,
    /// An allowed directory or a parent could not be created or resolved.
    #[error("cannot prepare the directory for {path:?}: {message}")]
    Io {
        /// The path as given.
        path: String,
        /// The cause.
        message: String,
    },
}

/// Resolves `path` for writing: a relative path is taken inside the first allowed directory;
/// `.` and `..` are applied, then symlinks in the existing part of the path are resolved, and
/// the result must lie inside one of `allowed` (themselves resolved; created if missing).
/// Missing parent directories are created only once the path is known to be inside, and the
/// check is repeated on the created directory. `None` allows any path (the CLI).
pub fn resolve(path: &str, allowed: Option<&[PathBuf]>) -> Result<PathBuf, PathError> {
    let given = Path::new(path);
    if path.is_empty() || path.ends_with('/') || given.file_name().is_none() {
        return Err(PathError::Invalid(path.to_string()));
    }
    let io = |e: std::io::Error| PathError::Io {
        path: path.to_string(),
        message: e.to_string(),
    };
    let roots: Option<Vec<PathBuf>> = match allowed {
        None => None,
        Some([]) => return Err(PathError::NoDirs),
        Some(dirs) => Some(
            dirs.iter()
                .map(|d| {
                    std::fs::create_dir_all(d)?;
                    d.canonicalize()
                })
                .collect::<Result<_, _>>()
                .map_err(io)?,
        ),
    };
    let base = match &roots {
        Some(roots) => roots[0].clone(),
        None => std::env::current_dir().map_err(io)?,
    };
    let joined = if given.is_absolute() {
        given.to_path_buf()
    } else {
        base.join(given)
    };
    let resolved = resolve_existing_prefix(&normalize(&joined)).map_err(io)?;
    let inside = |p: &Path| {
        roots
            .as_ref()
            .is_none_or(|roots| roots.iter().any(|r| p.starts_with(r)))
    };
    let outside = || PathError::Outside {
        path: path.to_string(),
        allowed: allowed
            .unwrap_or_default()
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    };
    if !inside(&resolved) {
        return Err(outside());
    }
    let parent = resolved
        .parent()
        .ok_or_else(|| PathError::Invalid(path.to_string()))?;
    std::fs::create_dir_all(parent).map_err(io)?;
    // Re-check with the directories as they now exist.
    let parent = parent.canonicalize().map_err(io)?;
    let file = parent.join(
        resolved
            .file_name()
            .ok_or_else(|| PathError::Invalid(path.to_string()))?,
    );
    if !inside(&file) {
        return Err(outside());
    }
    if file.is_dir() {
        return Err(PathError::Invalid(path.to_string()));
    }
    Ok(file)
}

/// Applies `.` and `..` lexically (`..` at the root stays at the root).
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

/// Resolves symlinks in the longest existing prefix of an absolute, normalized path and
/// appends the rest.
fn resolve_existing_prefix(path: &Path) -> std::io::Result<PathBuf> {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        // A symlink that exists, even dangling, is resolved (or fails) here.
        if std::fs::symlink_metadata(&existing).is_ok() {
            break;
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    // The file itself may be a symlink: the recording replaces the link (rename does not
    // follow it), so only its directory needs resolving.
    let mut resolved = if rest.is_empty() {
        let parent = existing.parent().unwrap_or(Path::new("/")).canonicalize()?;
        rest.push(existing.file_name().unwrap_or_default().to_os_string());
        parent
    } else {
        existing.canonicalize()?
    };
    for name in rest.iter().rev() {
        resolved.push(name);
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_inside_are_resolved_and_parents_created() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rec");
        let allowed = [root.clone()];
        let canon = |p: &Path| p.canonicalize().unwrap();
        let p = resolve("front/2026/clip.mp4", Some(&allowed)).unwrap();
        assert_eq!(p, canon(&root).join("front/2026/clip.mp4"));
        assert!(canon(&root).join("front/2026").is_dir());
        let abs = root.join("a/../b.mp4");
        assert_eq!(
            resolve(abs.to_str().unwrap(), Some(&allowed)).unwrap(),
            canon(&root).join("b.mp4")
        );
    }

    #[test]
    fn traversal_absolute_and_symlink_escapes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rec");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
        let allowed = [root.clone()];
        for bad in [
            "../x.mp4".to_string(),
            "a/../../x.mp4".to_string(),
            "/etc/x.mp4".to_string(),
            outside.join("x.mp4").to_str().unwrap().to_string(),
            "escape/x.mp4".to_string(),
            "escape/deeper/x.mp4".to_string(),
        ] {
            assert!(
                matches!(
                    resolve(&bad, Some(&allowed)),
                    Err(PathError::Outside { .. })
                ),
                "{bad}"
            );
        }
        assert!(!outside.join("deeper").exists(), "nothing created outside");
        assert_eq!(
            resolve("", Some(&allowed)),
            Err(PathError::Invalid(String::new()))
        );
        assert!(matches!(
            resolve("dir/", Some(&allowed)),
            Err(PathError::Invalid(_))
        ));
        assert_eq!(resolve("x.mp4", Some(&[])), Err(PathError::NoDirs));
    }
}
