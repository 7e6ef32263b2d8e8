//! One ipmpd per dataplane: an exclusive lock on the pin directory, taken
//! before anything is touched and held for the daemon's life, and one per
//! group. A second instance would take the dataplane over (with its own
//! probe cookie) and leave the first one deaf.
use std::{
    fs::{self, File},
    os::{
        linux::net::SocketAddrExt,
        unix::{
            fs::MetadataExt,
            net::{SocketAddr, UnixListener, UnixStream},
        },
    },
    path::Path,
};

use anyhow::{bail, Context, Result};
use nix::{
    errno::Errno,
    fcntl::{Flock, FlockArg},
    sys::socket::{getsockopt, sockopt::PeerCredentials},
};

/// Held while it lives; the kernel releases it when ipmpd exits, however.
pub struct InstanceLock {
    _dir: Flock<File>,
}

/// Locks `dir` (created if needed; bpffs holds only pins, so the lock is on
/// the directory itself). Fails, naming the holder's PID, when another
/// process holds it.
pub fn take(dir: &Path) -> Result<InstanceLock> {
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create pin directory {}", dir.display()))?;
    let file = File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(InstanceLock { _dir: lock }),
        Err((file, Errno::EWOULDBLOCK)) => {
            let holder = holder(&file).map_or_else(
                || "another process".to_string(),
                |pid| format!("another ipmpd (PID {pid})"),
            );
            bail!(
                "{holder} already runs the dataplane in {}; stop it first, or give this one \
                 another --pin-dir",
                dir.display()
            )
        }
        Err((_, e)) => Err(e).with_context(|| format!("locking {}", dir.display())),
    }
}

/// Held by a running group: one ipmpd per group and network namespace,
/// whatever the pin directories (two would fight over its interface).
pub struct GroupLock {
    _socket: UnixListener,
}

/// Takes group `name`'s lock in this network namespace: an abstract Unix
/// socket (abstract names are per namespace, leave no file behind and go
/// with the process). Fails, naming the holder's PID, when another process
/// runs the group.
pub fn take_group(name: &str) -> Result<GroupLock> {
    let address = SocketAddr::from_abstract_name(format!("ipmpd/group/{name}"))?;
    match UnixListener::bind_addr(&address) {
        Ok(socket) => Ok(GroupLock { _socket: socket }),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            // The holder listens: its credentials name it.
            let holder = UnixStream::connect_addr(&address)
                .ok()
                .and_then(|s| getsockopt(&s, PeerCredentials).ok())
                .map_or_else(
                    || "another process".to_string(),
                    |cred| format!("another ipmpd (PID {})", cred.pid()),
                );
            bail!(
                "{holder} already runs group {name} in this network namespace (from another pin \
                 directory); stop it, or take the group out of one of the configurations"
            )
        }
        Err(e) => Err(e).with_context(|| format!("taking the lock of group {name}")),
    }
}

/// The PID holding a flock on `file`, from /proc/locks.
fn holder(file: &File) -> Option<u32> {
    let meta = file.metadata().ok()?;
    let id = format!(
        "{:02x}:{:02x}:{}",
        nix::sys::stat::major(meta.dev()),
        nix::sys::stat::minor(meta.dev()),
        meta.ino()
    );
    holder_in(&fs::read_to_string("/proc/locks").ok()?, &id)
}

/// In /proc/locks text, the PID of the FLOCK on the file `id`
/// (`major:minor:inode`, as the kernel prints it).
fn holder_in(locks: &str, id: &str) -> Option<u32> {
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF"; waiters are
        // marked "->" and shifted by one field.
        match fields.as_slice() {
            [_, "FLOCK", _, _, pid, file, ..] if *file == id => pid.parse().ok(),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::holder_in;

    #[test]
    fn the_holder_is_read_from_proc_locks() {
        let locks = "1: POSIX  ADVISORY  WRITE 99 00:1a:77 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 4321 00:2a:5678 0 EOF\n";
        assert_eq!(holder_in(locks, "00:2a:5678"), Some(1234));
        assert_eq!(holder_in(locks, "00:1a:77"), None);
        assert_eq!(holder_in(locks, "00:2a:567"), None);
    }

    #[test]
    fn a_group_runs_once_per_namespace() {
        let name = format!("unit-test-{}", std::process::id());
        let first = super::take_group(&name).expect("first lock");
        let text = super::take_group(&name).err().expect("refused").to_string();
        assert!(
            text.contains(&format!("PID {}", std::process::id())),
            "{text}"
        );
        drop(first);
        assert!(super::take_group(&name).is_ok());
    }

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid() {
        let dir = std::env::temp_dir().join(format!("ipmp-lock-{}", std::process::id()));
        let first = super::take(&dir).expect("first lock");
        let second = super::take(&dir).err().expect("second lock refused");
        let text = second.to_string();
        assert!(
            text.contains(&format!("PID {}", std::process::id())),
            "{text}"
        );
        drop(first);
        assert!(super::take(&dir).is_ok());
        let _ = std::fs::remove_dir(&dir);
    }
}
