//! Tells when something is removed from a group's pin folder. bpffs, like
//! any filesystem, sends inotify events for what is unlinked or renamed
//! in a folder: ipmpd pins again what someone removed as soon as it is
//! gone, without looking at the folder on a timer.
use std::{
    ffi::CString,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use anyhow::{anyhow, Context, Result};
use tokio::io::{unix::AsyncFd, Interest};

/// What takes a pin away: its removal or renaming, or the folder's own.
const REMOVALS: u32 =
    libc::IN_DELETE | libc::IN_MOVED_FROM | libc::IN_DELETE_SELF | libc::IN_MOVE_SELF;

pub struct PinWatch {
    fd: AsyncFd<OwnedFd>,
    dir: PathBuf,
}

impl PinWatch {
    /// Watches `dir` (on the current tokio runtime).
    pub fn new(dir: &Path) -> Result<PinWatch> {
        // SAFETY: inotify_init1 takes flags only; a valid fd is owned here.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("inotify_init1");
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: the OwnedFd moves into the AsyncFd, which closes it last.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| anyhow!("watching {}: {e}", dir.display()))?;
        let watch = PinWatch {
            fd,
            dir: dir.to_owned(),
        };
        watch.rewatch()?;
        Ok(watch)
    }

    /// Watches the folder again: a folder removed and made anew is another
    /// one, which the old watch does not see.
    pub fn rewatch(&self) -> Result<()> {
        let path = CString::new(self.dir.as_os_str().as_bytes())?;
        // SAFETY: a valid fd and a NUL-terminated path.
        let wd = unsafe {
            libc::inotify_add_watch(self.fd.get_ref().as_raw_fd(), path.as_ptr(), REMOVALS)
        };
        if wd < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("watching {}", self.dir.display()));
        }
        Ok(())
    }

    /// Resolves when something was removed from the folder since the last
    /// call (the events themselves do not matter: the folder is read).
    pub async fn removed(&self) -> Result<()> {
        let mut guard = self.fd.readable().await?;
        let mut events = [0u8; 4096];
        loop {
            // SAFETY: reads into a buffer of its size.
            let n = unsafe {
                libc::read(
                    self.fd.get_ref().as_raw_fd(),
                    events.as_mut_ptr().cast(),
                    events.len(),
                )
            };
            if n <= 0 {
                break;
            }
        }
        // Drained to EAGAIN: an event from here on wakes us again.
        guard.clear_ready();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any folder's removals are seen (the daemon tests watch bpffs).
    #[tokio::test]
    async fn a_removal_is_seen_and_a_new_folder_is_watched_again() {
        let dir = std::env::temp_dir().join(format!("ipmp-pin-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a"), b"").unwrap();
        let watch = PinWatch::new(&dir).unwrap();
        std::fs::remove_file(dir.join("a")).unwrap();
        let seen = tokio::time::timeout(std::time::Duration::from_secs(5), watch.removed()).await;
        assert!(seen.is_ok(), "the removal of a file was not seen");

        std::fs::remove_dir_all(&dir).unwrap();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), watch.removed()).await;
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b"), b"").unwrap();
        watch.rewatch().unwrap();
        std::fs::remove_file(dir.join("b")).unwrap();
        let seen = tokio::time::timeout(std::time::Duration::from_secs(5), watch.removed()).await;
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(seen.is_ok(), "a folder made anew was not watched");
    }
}
