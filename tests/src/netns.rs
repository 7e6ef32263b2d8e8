//! Network namespaces the run creates itself, removed again on drop.
use std::{
    fs::File,
    process::{Command, Output},
    sync::{
        atomic::{AtomicU32, Ordering},
        mpsc,
    },
    thread,
    time::Duration,
};

use anyhow::{bail, Context, Result};
use nix::sched::{setns, CloneFlags};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A unique name: the process id and a counter keep two runs (and two
/// tests of one run) apart.
pub fn unique(role: &str) -> String {
    format!(
        "ipmpt{}x{}{role}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct Netns {
    pub name: String,
    /// Removed on drop unless this is a long-lived testbed.
    owned: bool,
}

impl Netns {
    pub fn create(name: &str) -> Result<Netns> {
        run(Command::new("ip").args(["netns", "add", name]))?;
        let ns = Netns {
            name: name.to_string(),
            owned: true,
        };
        ns.ip("link set lo up")?;
        Ok(ns)
    }

    pub fn delete(name: &str) {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
    }

    /// Leaves the namespace in place when dropped (the testbed's).
    pub fn persist(mut self) {
        self.owned = false;
    }

    /// `ip -n NS ARGS`.
    pub fn ip(&self, args: &str) -> Result<String> {
        run(Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args.split_whitespace()))
    }

    /// A command to run inside the namespace. `nsenter --net` keeps the
    /// mount namespace, so /sys/fs/bpf stays the real bpffs (unlike
    /// `ip netns exec`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.name))
            .arg("--")
            .arg(program);
        c
    }

    /// Sets `key` (dotted, as sysctl(8) names it) in this namespace:
    /// /proc/sys/net shows the settings of the opening thread's namespace.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let value = value.to_string();
        self.enter(move || std::fs::write(&path, value).with_context(|| format!("writing {path}")))
    }

    /// Runs `f` on a thread that has entered the namespace: sockets it
    /// opens live there.
    pub fn enter<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        join(self.spawn(f))
    }

    /// Like [`Self::enter`], without waiting for `f`.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> thread::JoinHandle<Result<T>> {
        let path = format!("/run/netns/{}", self.name);
        thread::spawn(move || {
            let fd = File::open(&path).with_context(|| format!("opening {path}"))?;
            setns(fd, CloneFlags::CLONE_NEWNET).context("setns")?;
            f()
        })
    }

    /// Like [`Self::spawn`], for an `f` that must listen before the caller
    /// goes on (a sniffer, a server): `f` sends on its `ready` once it
    /// does, and this returns then, or fails after 5 s saying that `what`
    /// did not start.
    pub fn spawn_ready<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce(mpsc::Sender<()>) -> Result<T> + Send + 'static,
    ) -> Result<thread::JoinHandle<Result<T>>> {
        let (ready, listening) = mpsc::channel();
        let handle = self.spawn(move || f(ready));
        listening
            .recv_timeout(Duration::from_secs(5))
            .with_context(|| format!("{what} did not start"))?;
        Ok(handle)
    }

    /// The inode that names this namespace (ipmpd's pin subfolder).
    pub fn inode(&self) -> Result<u64> {
        use std::os::unix::fs::MetadataExt;
        Ok(std::fs::metadata(format!("/run/netns/{}", self.name))?.ino())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if self.owned {
            Netns::delete(&self.name);
        }
    }
}

/// Runs a command, failing with its stderr when it fails.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out: Output = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits for a thread started with [`Netns::spawn`].
pub fn join<T>(handle: thread::JoinHandle<Result<T>>) -> Result<T> {
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("thread in namespace panicked"))?
}

/// The index of interface `name` in the calling thread's namespace.
pub fn ifindex(name: &str) -> Result<u32> {
    let name = std::ffi::CString::new(name)?;
    // SAFETY: a valid NUL-terminated name.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => bail!("no interface {name:?}"),
        index => Ok(index),
    }
}
