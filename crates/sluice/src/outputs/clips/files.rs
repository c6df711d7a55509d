//! The files a recording writes, created relative to a directory descriptor so that what was
//! checked is what is written.
//!
//! A [`Target`] holds the directory of the clip open. It was reached from the allowed
//! directory one component at a time with `O_NOFOLLOW` (missing directories are created with
//! `mkdirat`), so a symlink inside an allowed directory is refused rather than followed.
//! Temporaries are created in that directory with `O_CREAT|O_EXCL|O_NOFOLLOW` under random
//! names: a symlink, FIFO or device planted at a predictable name is never opened. The clip
//! itself is never opened either: it appears by `renameat2(RENAME_NOREPLACE)` of the finished
//! temporary, after the path has been walked again from the allowed directory and found to
//! lead to the same directory (a directory moved or swapped for a symlink during the recording
//! fails it, and the temporary is removed). One file has one writer at a time: [`Writers`].

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;
use tracing::warn;

use super::path::{Location, NAME_MAX, PathError, prefix};

/// How many numbered names (`clip-1.mp4`, …) are tried when a file appeared at the target
/// during a recording.
const ALTERNATIVES: u32 = 1000;

/// A clip's place, held open for the whole recording.
pub struct Target {
    location: Location,
    /// The path shown to users (changes if the clip is kept under a numbered name).
    path: PathBuf,
    /// The clip's directory.
    dir: OwnedFd,
    /// (device, inode) of that directory.
    dir_id: (u64, u64),
    overwrite: bool,
    /// Who records it (for the claim of a numbered name).
    holder: String,
    claim: Claim,
}

impl Target {
    /// Opens the directory of `location`, creating missing directories and refusing symlinks
    /// below the root; claims the file for `holder`; and checks what is at the target now: a
    /// regular file is an error unless `overwrite`, anything else always is. `given` is the
    /// path as the client wrote it, for messages.
    pub fn open(
        location: Location,
        given: &str,
        overwrite: bool,
        writers: &Writers,
        holder: &str,
    ) -> Result<Target, PathError> {
        let dir = walk(&location.root, &location.dirs, true).map_err(|e| match e {
            WalkError::Symlink(link) => PathError::Symlink {
                path: given.to_string(),
                link,
            },
            WalkError::Io(at, e) => PathError::Io {
                path: given.to_string(),
                message: format!("{at}: {e}"),
            },
        })?;
        let io = |e: Errno| PathError::Io {
            path: given.to_string(),
            message: std::io::Error::from(e).to_string(),
        };
        let dir_id = identity(&dir).map_err(io)?;
        let path = location.shown();
        let claim = writers
            .claim(dir_id, &location.name, holder)
            .map_err(|stream| PathError::Busy {
                path: path.clone(),
                stream,
            })?;
        match rustix::fs::statat(&dir, location.name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => {}
            Ok(stat) => match FileType::from_raw_mode(stat.st_mode) {
                FileType::RegularFile if overwrite => {}
                FileType::RegularFile => return Err(PathError::Exists { path }),
                other => {
                    return Err(PathError::NotAFile {
                        path,
                        kind: kind_name(other),
                    });
                }
            },
            Err(e) => return Err(io(e)),
        }
        Ok(Target {
            location,
            path,
            dir,
            dir_id,
            overwrite,
            holder: holder.to_string(),
            claim,
        })
    }

    /// Where the clip is (or will be).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates a new temporary file next to the clip, open for reading and writing, under an
    /// unpredictable name (`.NAME.<16 hex>SUFFIX.tmp`); returns it and its name.
    pub(crate) fn create_temp(&self, suffix: &str) -> std::io::Result<(std::fs::File, String)> {
        // Short enough that the temporary's name stays within NAME_MAX.
        let stem = prefix(&self.location.name, 200);
        let mut last = Errno::EXIST;
        for _ in 0..8 {
            let name = format!(".{stem}.{:016x}{suffix}.tmp", rand::random::<u64>());
            match rustix::fs::openat(
                &self.dir,
                name.as_str(),
                OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o666),
            ) {
                Ok(fd) => return Ok((std::fs::File::from(fd), name)),
                Err(Errno::EXIST) => last = Errno::EXIST,
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.into())
    }

    /// Removes a temporary by name (nothing if it is gone).
    pub(crate) fn remove(&self, name: &str) {
        let _ = rustix::fs::unlinkat(&self.dir, name, AtFlags::empty());
    }

    /// Fails when the path, walked again from the root without following symlinks, no longer
    /// leads to the directory held open.
    pub(crate) fn check_in_place(&self) -> Result<(), String> {
        let moved = |why: String| {
            format!(
                "the directory of {} was moved or replaced during the recording ({why}); \
                 symlinks inside the allowed directories are not followed, so the clip was \
                 discarded",
                self.path.display()
            )
        };
        match walk(&self.location.root, &self.location.dirs, false) {
            Ok(dir) => match identity(&dir) {
                Ok(id) if id == self.dir_id => Ok(()),
                Ok(_) => Err(moved("it is now another directory".into())),
                Err(e) => Err(moved(std::io::Error::from(e).to_string())),
            },
            Err(WalkError::Symlink(link)) => Err(moved(format!("{link:?} is now a symlink"))),
            Err(WalkError::Io(at, e)) => Err(moved(format!("{at:?}: {e}"))),
        }
    }

    /// Renames the finished temporary `tmp` to the clip's name. The directory must still be
    /// where it was. An existing regular file is replaced only with `overwrite`; otherwise (or
    /// when something else is there) the clip is kept under the next free numbered name, and
    /// [`Target::path`] says which.
    pub(crate) fn commit(&mut self, tmp: &str) -> Result<(), String> {
        self.check_in_place()?;
        self.place(tmp)?;
        // Moved between the check and the rename: take the file back out of there.
        if let Err(e) = self.check_in_place() {
            self.remove(&self.location.name);
            return Err(e);
        }
        if let Err(e) = rustix::fs::fsync(&self.dir) {
            warn!(path = %self.path.display(), "cannot sync the directory: {e}");
        }
        Ok(())
    }

    fn place(&mut self, tmp: &str) -> Result<(), String> {
        let failed = |e: Errno, name: &str| {
            format!(
                "cannot rename the finished clip to {:?} in {}: {}",
                name,
                self.path.parent().unwrap_or(Path::new("")).display(),
                std::io::Error::from(e)
            )
        };
        let name = self.location.name.clone();
        if self.overwrite {
            match rustix::fs::statat(&self.dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile => {}
                Ok(_) | Err(Errno::NOENT) => {
                    return rustix::fs::renameat(&self.dir, tmp, &self.dir, name.as_str())
                        .map_err(|e| failed(e, &name));
                }
                Err(e) => return Err(failed(e, &name)),
            }
        } else {
            match rename_noreplace(&self.dir, tmp, &name) {
                Ok(()) => return Ok(()),
                Err(Errno::EXIST) => {}
                Err(e) => return Err(failed(e, &name)),
            }
        }
        // Something appeared at the target during the recording: keep both.
        for n in 1..=ALTERNATIVES {
            let candidate = numbered(&name, n);
            let Ok(claim) = self
                .claim
                .writers
                .claim(self.dir_id, &candidate, &self.holder)
            else {
                continue;
            };
            match rename_noreplace(&self.dir, tmp, &candidate) {
                Ok(()) => {
                    let requested = std::mem::replace(&mut self.location.name, candidate);
                    self.path = self.location.shown();
                    self.claim = claim;
                    warn!(
                        path = %self.path.display(),
                        "{requested:?} appeared during the recording; the clip was kept under another name"
                    );
                    return Ok(());
                }
                Err(Errno::EXIST) => {}
                Err(e) => return Err(failed(e, &candidate)),
            }
        }
        Err(format!(
            "{} and {ALTERNATIVES} numbered names next to it exist: the clip was discarded",
            self.path.display()
        ))
    }
}

/// `renameat2(RENAME_NOREPLACE)` within one directory: fails with `EEXIST` rather than replace.
fn rename_noreplace(dir: &OwnedFd, from: &str, to: &str) -> rustix::io::Result<()> {
    match rustix::fs::renameat_with(dir, from, dir, to, RenameFlags::NOREPLACE) {
        // Filesystems without RENAME_NOREPLACE (some network and FUSE ones): a hard link
        // refuses an existing name the same way.
        Err(Errno::INVAL | Errno::NOSYS | Errno::NOTSUP) => {
            rustix::fs::linkat(dir, from, dir, to, AtFlags::empty())?;
            let _ = rustix::fs::unlinkat(dir, from, AtFlags::empty());
            Ok(())
        }
        other => other,
    }
}

/// `clip.mp4` → `clip-N.mp4` (within NAME_MAX).
fn numbered(name: &str, n: u32) -> String {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, ""),
    };
    let suffix = format!("-{n}{ext}");
    format!(
        "{}{suffix}",
        prefix(stem, NAME_MAX.saturating_sub(suffix.len()))
    )
}

fn identity(fd: &OwnedFd) -> rustix::io::Result<(u64, u64)> {
    let stat = rustix::fs::fstat(fd)?;
    #[allow(clippy::useless_conversion)] // the field types differ between platforms
    Ok((u64::from(stat.st_dev), u64::from(stat.st_ino)))
}

fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        _ => "special file",
    }
}

enum WalkError {
    /// A component (this relative path) is a symlink.
    Symlink(String),
    /// A component (this relative path, or the root) cannot be opened or created.
    Io(String, std::io::Error),
}

/// Opens `root` (following symlinks: it is configured, not requested) and then each of `dirs`
/// without following symlinks, creating missing ones when `create`. Never blocks on a FIFO
/// (`O_DIRECTORY|O_NONBLOCK`).
fn walk(root: &Path, dirs: &[String], create: bool) -> Result<OwnedFd, WalkError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let mut dir = rustix::fs::openat(CWD, root, flags, Mode::empty())
        .map_err(|e| WalkError::Io(root.display().to_string(), e.into()))?;
    for (i, name) in dirs.iter().enumerate() {
        let at = || dirs[..=i].join("/");
        let open = |parent: &OwnedFd| {
            rustix::fs::openat(
                parent,
                name.as_str(),
                flags | OFlags::NOFOLLOW,
                Mode::empty(),
            )
        };
        let mut next = open(&dir);
        if create && matches!(next, Err(Errno::NOENT)) {
            match rustix::fs::mkdirat(&dir, name.as_str(), Mode::from_raw_mode(0o777)) {
                Ok(()) | Err(Errno::EXIST) => next = open(&dir),
                Err(e) => return Err(WalkError::Io(at(), e.into())),
            }
        }
        dir = match next {
            Ok(fd) => fd,
            Err(e) => {
                let is_symlink = rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Symlink);
                return Err(if is_symlink {
                    WalkError::Symlink(at())
                } else {
                    WalkError::Io(at(), e.into())
                });
            }
        };
    }
    Ok(dir)
}

/// The files being recorded, hub-wide: one writer per file. A file is known by its directory's
/// (device, inode) and its name, so two spellings of one path are the same file.
#[derive(Clone, Default)]
pub struct Writers {
    /// File → the stream recording it. A std mutex: held for one map operation, never across
    /// an await.
    held: Arc<Mutex<HashMap<WriterKey, String>>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct WriterKey {
    dir: (u64, u64),
    name: String,
}

impl Writers {
    /// Claims a file for `holder`, or says who holds it.
    fn claim(&self, dir: (u64, u64), name: &str, holder: &str) -> Result<Claim, String> {
        let key = WriterKey {
            dir,
            name: name.to_string(),
        };
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(other) = held.get(&key) {
            return Err(other.clone());
        }
        held.insert(key.clone(), holder.to_string());
        Ok(Claim {
            writers: self.clone(),
            key,
        })
    }
}

/// A file claimed for writing; released when dropped.
struct Claim {
    writers: Writers,
    key: WriterKey,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.writers
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::outputs::clips::path::locate;

    fn open(
        root: &Path,
        path: &str,
        overwrite: bool,
        writers: &Writers,
    ) -> Result<Target, PathError> {
        let location = locate(path, Some(&[root.to_path_buf()]))?;
        Target::open(location, path, overwrite, writers, "test")
    }

    fn finish(target: &mut Target, bytes: &[u8]) -> Result<(), String> {
        let (mut file, name) = target.create_temp("").unwrap();
        file.write_all(bytes).unwrap();
        drop(file);
        let result = target.commit(&name);
        target.remove(&name);
        result
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn directories_are_created_and_symlinks_below_the_root_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rec");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        symlink(&outside, root.join("out")).unwrap();
        symlink(root.join("real"), root.join("in")).unwrap();
        std::fs::write(root.join("file"), b"x").unwrap();
        let writers = Writers::default();
        let mut t = open(&root, "a/b/clip.mp4", false, &writers).unwrap();
        assert!(root.join("a/b").is_dir());
        finish(&mut t, b"clip").unwrap();
        assert_eq!(std::fs::read(root.join("a/b/clip.mp4")).unwrap(), b"clip");
        for (path, link) in [("out/x.mp4", "out"), ("in/deeper/x.mp4", "in")] {
            match open(&root, path, false, &writers) {
                Err(PathError::Symlink { link: l, .. }) => assert_eq!(l, link),
                other => panic!("{path}: {:?}", other.map(|t| t.path)),
            }
        }
        assert!(matches!(
            open(&root, "file/x.mp4", false, &writers),
            Err(PathError::Io { .. })
        ));
        assert_eq!(names(&outside), Vec::<String>::new());
        assert_eq!(names(&root.join("real")), Vec::<String>::new());
        // The root itself may be a symlink: it is configured, not requested.
        let linked_root = dir.path().join("linked");
        symlink(&root, &linked_root).unwrap();
        let mut t = open(&linked_root, "a/via-root.mp4", false, &writers).unwrap();
        finish(&mut t, b"ok").unwrap();
        assert_eq!(std::fs::read(root.join("a/via-root.mp4")).unwrap(), b"ok");
    }

    #[test]
    fn temporaries_never_open_what_is_planted_at_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rec");
        std::fs::create_dir_all(&root).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let t = open(&root, "clip.mp4", false, &Writers::default()).unwrap();
        let (mut a, name_a) = t.create_temp(".data").unwrap();
        let (_, name_b) = t.create_temp(".data").unwrap();
        assert_ne!(name_a, name_b, "unpredictable names");
        assert!(name_a.starts_with(".clip.mp4.") && name_a.ends_with(".data.tmp"));
        // Scratch data is read back through the same descriptor, even once unlinked.
        t.remove(&name_a);
        a.write_all(b"sample data").unwrap();
        a.rewind().unwrap();
        let mut back = String::new();
        a.read_to_string(&mut back).unwrap();
        assert_eq!(back, "sample data");
        t.remove(&name_b);
        assert_eq!(names(&root), Vec::<String>::new());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        // A long name still gives a temporary name within NAME_MAX.
        let long = "n".repeat(NAME_MAX);
        let t = open(&root, &long, false, &Writers::default()).unwrap();
        let (_, name) = t.create_temp(".data").unwrap();
        assert!(name.len() <= NAME_MAX, "{}", name.len());
        t.remove(&name);
    }

    #[test]
    fn existing_targets_overwrite_and_names_that_appear() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rec");
        std::fs::create_dir_all(root.join("dir.mp4")).unwrap();
        std::fs::write(root.join("old.mp4"), b"old").unwrap();
        symlink("old.mp4", root.join("link.mp4")).unwrap();
        let writers = Writers::default();
        assert!(matches!(
            open(&root, "old.mp4", false, &writers),
            Err(PathError::Exists { .. })
        ));
        for (path, kind) in [("dir.mp4", "directory"), ("link.mp4", "symlink")] {
            match open(&root, path, true, &writers) {
                Err(PathError::NotAFile { kind: k, .. }) => assert_eq!(k, kind),
                other => panic!("{path}: {:?}", other.map(|t| t.path)),
            }
        }
        let mut t = open(&root, "old.mp4", true, &writers).unwrap();
        finish(&mut t, b"new").unwrap();
        assert_eq!(std::fs::read(root.join("old.mp4")).unwrap(), b"new");

        // Appeared during the recording, overwrite not asked: kept under a free name.
        let mut t = open(&root, "late.mp4", false, &writers).unwrap();
        std::fs::write(root.join("late.mp4"), b"appeared").unwrap();
        // A numbered name another recording holds is skipped too.
        let held = open(&root, "late-1.mp4", false, &writers).unwrap();
        finish(&mut t, b"clip").unwrap();
        assert_eq!(t.path(), root.canonicalize().unwrap().join("late-2.mp4"));
        assert_eq!(std::fs::read(root.join("late.mp4")).unwrap(), b"appeared");
        assert_eq!(std::fs::read(root.join("late-2.mp4")).unwrap(), b"clip");
        drop(held);
        // With overwrite, something other than a regular file is not replaced either.
        let mut t = open(&root, "gone.mp4", true, &writers).unwrap();
        std::fs::create_dir(root.join("gone.mp4")).unwrap();
        finish(&mut t, b"clip").unwrap();
        assert_eq!(std::fs::read(root.join("gone-1.mp4")).unwrap(), b"clip");
        assert_eq!(
            names(&root),
            [
                "dir.mp4",
                "gone-1.mp4",
                "gone.mp4",
                "late-2.mp4",
                "late.mp4",
                "link.mp4",
                "old.mp4"
            ]
        );
        assert_eq!(numbered("clip.mp4", 3), "clip-3.mp4");
        assert_eq!(numbered(".hidden", 1), ".hidden-1");
        assert_eq!(numbered(&"x".repeat(255), 12).len(), 255);
    }

    #[test]
    fn one_writer_per_file_however_spelled() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rec");
        std::fs::create_dir_all(root.join("a")).unwrap();
        let writers = Writers::default();
        let first = Target::open(
            locate("x.mp4", Some(std::slice::from_ref(&root))).unwrap(),
            "x.mp4",
            false,
            &writers,
            "front",
        )
        .unwrap();
        let absolute = root.join("x.mp4").display().to_string();
        for spelling in ["x.mp4", "a/../x.mp4", "./x.mp4", absolute.as_str()] {
            match open(&root, spelling, true, &writers) {
                Err(PathError::Busy { stream, .. }) => assert_eq!(stream, "front"),
                other => panic!("{spelling}: {:?}", other.map(|t| t.path)),
            }
        }
        drop(first);
        assert!(open(&root, "a/../x.mp4", false, &writers).is_ok());
    }

    #[test]
    fn a_directory_moved_or_swapped_during_the_recording_fails_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rec");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let writers = Writers::default();

        let mut t = open(&root, "cam/clip.mp4", false, &writers).unwrap();
        let (_, tmp) = t.create_temp("").unwrap();
        std::fs::rename(root.join("cam"), root.join("cam.old")).unwrap();
        symlink(&outside, root.join("cam")).unwrap();
        let error = t.commit(&tmp).unwrap_err();
        assert!(error.contains("\"cam\" is now a symlink"), "{error}");
        t.remove(&tmp);
        assert_eq!(names(&root.join("cam.old")), Vec::<String>::new());

        let mut t = open(&root, "door/clip.mp4", false, &writers).unwrap();
        let (_, tmp) = t.create_temp("").unwrap();
        std::fs::rename(root.join("door"), root.join("door.old")).unwrap();
        std::fs::create_dir(root.join("door")).unwrap();
        let error = t.commit(&tmp).unwrap_err();
        assert!(error.contains("it is now another directory"), "{error}");
        t.remove(&tmp);
        assert_eq!(names(&root.join("door.old")), Vec::<String>::new());
        assert_eq!(names(&root.join("door")), Vec::<String>::new());
        assert_eq!(names(&outside), Vec::<String>::new());
    }
}
