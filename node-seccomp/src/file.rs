//! Reading profile files: regular files only, never blocking on a FIFO, never more than
//! [`MAX_PROFILE_BYTES`].

use std::fs::{File, FileType, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// The largest profile file read, in bytes (1 MiB). The largest profiles in use are far
/// smaller (the containers-common default is about 16 KiB); anything bigger is refused with
/// [`Error::ProfileTooLarge`] before it is read.
pub const MAX_PROFILE_BYTES: u64 = 1 << 20;

/// What a non-regular file is, for error messages.
pub(crate) fn kind(ft: &FileType) -> &'static str {
    if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// Opens `path` read-only with `O_NONBLOCK` (opening a FIFO then returns at once instead of
/// waiting for a writer) and `O_CLOEXEC` (std's default), plus `O_NOFOLLOW` when `nofollow`.
pub(crate) fn open(path: &Path, nofollow: bool) -> std::io::Result<File> {
    let mut flags = libc::O_NONBLOCK;
    if nofollow {
        flags |= libc::O_NOFOLLOW;
    }
    OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_CLOEXEC)
        .open(path)
}

/// Reads an opened profile file: `fstat` must show a regular file of at most
/// [`MAX_PROFILE_BYTES`], and the read itself is bounded, so a file that grows after the
/// `fstat` (or claims size 0, as procfs files do) cannot make us read more than the limit.
pub(crate) fn read_regular(file: &mut File, path: &Path) -> Result<Vec<u8>> {
    let io_err = |source: std::io::Error| Error::ProfileFile {
        path: path.to_path_buf(),
        source,
    };
    let meta = file.metadata().map_err(io_err)?;
    if !meta.file_type().is_file() {
        return Err(Error::ProfileNotRegular {
            path: path.to_path_buf(),
            kind: kind(&meta.file_type()),
        });
    }
    let too_large = |size: u64| Error::ProfileTooLarge {
        path: path.to_path_buf(),
        size,
        limit: MAX_PROFILE_BYTES,
    };
    if meta.len() > MAX_PROFILE_BYTES {
        return Err(too_large(meta.len()));
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "`meta.len()` is at most MAX_PROFILE_BYTES (1 MiB) here"
    )]
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_PROFILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    let read = bytes.len() as u64;
    if read > MAX_PROFILE_BYTES {
        // It grew after the fstat: report the larger of what it claims now and what was read.
        let now = file.metadata().map(|m| m.len()).unwrap_or(0);
        return Err(too_large(now.max(read)));
    }
    Ok(bytes)
}

/// Reads a profile file named by an operator (`nodectl`, tests): symbolic links are followed,
/// but the file must be a regular file within the size limit, and a FIFO does not block.
pub(crate) fn read_profile_file(path: &Path) -> Result<Vec<u8>> {
    let mut file = open(path, false).map_err(|source| Error::ProfileFile {
        path: path.to_path_buf(),
        source,
    })?;
    read_regular(&mut file, path)
}
