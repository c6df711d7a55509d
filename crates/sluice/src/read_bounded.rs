//! Reading user-named files with a bound: only regular files, never more than a cap, and never
//! blocking on a FIFO (a path may name `/dev/zero`, a FIFO with no writer, or a directory).

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A FIFO, device, socket or directory.
    #[error("not a regular file (a FIFO, device or directory)")]
    NotRegular,
    /// Larger than the cap (whatever size the file claims: it may grow while read).
    #[error("larger than {0} bytes")]
    TooLarge(u64),
}

/// Reads the regular file at `path`, of at most `max` bytes. It is opened with `O_NONBLOCK`,
/// so a FIFO is refused at once instead of blocking the thread until a writer appears.
pub fn read_regular_file(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular);
    }
    if meta.len() > max {
        return Err(ReadError::TooLarge(max));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    file.take(max.saturating_add(1)).read_to_end(&mut data)?;
    if data.len() as u64 > max {
        return Err(ReadError::TooLarge(max));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_devices_fifos_directories_and_large_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_regular_file(Path::new("/dev/zero"), 1024),
            Err(ReadError::NotRegular)
        ));
        assert!(matches!(
            read_regular_file(dir.path(), 1024),
            Err(ReadError::NotRegular)
        ));
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Returns at once (a blocking open would hang this test).
        assert!(matches!(
            read_regular_file(&fifo, 1024),
            Err(ReadError::NotRegular)
        ));
        let big = dir.path().join("big");
        std::fs::write(&big, vec![0u8; 2048]).unwrap();
        assert!(matches!(
            read_regular_file(&big, 1024),
            Err(ReadError::TooLarge(1024))
        ));
        assert_eq!(read_regular_file(&big, 2048).unwrap().len(), 2048);
    }
}
