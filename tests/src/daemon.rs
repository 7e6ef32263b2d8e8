//! ipmpd run inside a test namespace, with its own socket, pin directory
//! and log; stopped and cleaned up on drop.
use std::{
    fs,
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::{
    config::IpmpToml,
    netns::{unique, Netns},
    topology::Topology,
};

/// Runs ipmpctl under `name` (it answers as ipmpstat or if_mpadm when
/// called so), from a link in a folder of its own, with what `setup` adds
/// to the command.
pub fn ipmpctl_as(name: &str, setup: impl FnOnce(&mut Command)) -> Result<Output> {
    let dir = std::env::temp_dir().join(unique("bin"));
    fs::create_dir_all(&dir)?;
    let alias = dir.join(name);
    let out = std::os::unix::fs::symlink(bin("ipmpctl"), &alias).and_then(|()| {
        let mut command = Command::new(&alias);
        setup(&mut command);
        command.output()
    });
    fs::remove_dir_all(&dir)?;
    Ok(out?)
}

/// The lines `output` (a follower's standard output: `ipmpctl events`,
/// `stat -p`) prints, as they come; the reader ends with the output.
pub fn lines_of(output: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Where the built binaries are (`cargo xtask test` sets IPMP_BIN_DIR).
pub fn bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("IPMP_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug"));
    dir.join(name)
}

pub struct Daemon {
    child: Option<Child>,
    pub socket: PathBuf,
    pub pin_dir: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    dir: PathBuf,
}

impl Daemon {
    /// Starts ipmpd in `ns` with `config` (TOML) and waits until it answers.
    pub fn start(ns: &Netns, config: &str) -> Result<Daemon> {
        let d = Daemon::spawn(ns, config)?;
        d.wait_ready(Duration::from_secs(20))?;
        Ok(d)
    }

    /// The tutorial's network (namespaces named after `prefix`) with group
    /// production0 (data address 192.0.2.200/24, every member, link-based
    /// detection only), its state ok.
    pub fn start_tutorial(prefix: &str) -> Result<(Topology, Daemon)> {
        Daemon::start_on_tutorial(prefix, &IpmpToml::tutorial().render())
    }

    /// The tutorial's network (namespaces named after `prefix`) with ipmpd
    /// running `config`, its first group's state ok.
    pub fn start_on_tutorial(prefix: &str, config: &str) -> Result<(Topology, Daemon)> {
        let t = Topology::build(&unique(prefix))?;
        let d = Daemon::start(&t.host, config)?;
        d.wait_group("ok")?;
        Ok((t, d))
    }

    /// Starts ipmpd again with the same config, socket and pins (after
    /// [`Self::stop`]), as a restart or upgrade would.
    pub fn start_again(mut d: Daemon, ns: &Netns) -> Result<Daemon> {
        d.stop()?;
        d.child = Some(d.command(ns).spawn().context("restarting ipmpd")?);
        d.wait_ready(Duration::from_secs(20))?;
        Ok(d)
    }

    /// Starts ipmpd without waiting for it.
    pub fn spawn(ns: &Netns, config: &str) -> Result<Daemon> {
        let id = unique("d");
        let dir = std::env::temp_dir().join(&id);
        fs::create_dir_all(&dir)?;
        let mut d = Daemon {
            child: None,
            socket: dir.join("ipmpd.sock"),
            pin_dir: PathBuf::from(format!("/sys/fs/bpf/{id}")),
            config: dir.join("ipmp.toml"),
            log: dir.join("ipmpd.log"),
            dir,
        };
        fs::write(&d.config, config)?;
        d.child = Some(d.command(ns).spawn().context("starting ipmpd")?);
        Ok(d)
    }

    fn command(&self, ns: &Netns) -> Command {
        let mut c = ns.command(bin("ipmpd").to_str().unwrap_or("ipmpd"));
        c.arg("--config")
            .arg(&self.config)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--pin-dir")
            .arg(&self.pin_dir)
            // IPMP_TEST_LOG=debug shows ipmpd's timings (the bench reads them).
            .env(
                "RUST_LOG",
                std::env::var("IPMP_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Ok(log) = fs::File::create(&self.log) {
            c.stderr(log);
        }
        c
    }

    /// Runs ipmpd once more in `ns` with this daemon's config and pin
    /// directory and `args` (say `--teardown`), and waits for it.
    pub fn run_other(&self, ns: &Netns, args: &[&str]) -> Result<Output> {
        let mut c = ns.command(bin("ipmpd").to_str().unwrap_or("ipmpd"));
        c.arg("--config")
            .arg(&self.config)
            .arg("--pin-dir")
            .arg(&self.pin_dir)
            .args(args)
            .stdin(Stdio::null());
        Ok(c.output()?)
    }

    /// Waits until ipmpd answers on its socket.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if self
                .ctl(&["stat", "-g"])
                .map(|o| o.status.success())
                .unwrap_or(false)
            {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "ipmpd did not answer within {timeout:?}; its log:\n{}",
            self.log_text()
        )
    }

    /// Kills ipmpd with SIGKILL, as a crash would: nothing is cleaned up.
    pub fn kill(&mut self) -> Result<()> {
        self.signal(nix::sys::signal::Signal::SIGKILL)?;
        if let Some(mut child) = self.child.take() {
            child.wait()?;
        }
        Ok(())
    }

    /// Sends ipmpd a signal (nsenter execs ipmpd, so the child is ipmpd).
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> Result<()> {
        let child = self.child.as_ref().context("ipmpd not running")?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal)?;
        Ok(())
    }

    /// Stops ipmpd with SIGTERM and waits for it (the dataplane stays).
    pub fn stop(&mut self) -> Result<()> {
        if self.child.is_some() {
            self.signal(nix::sys::signal::Signal::SIGTERM)?;
        }
        if let Some(mut child) = self.child.take() {
            child.wait()?;
        }
        Ok(())
    }

    /// Waits for ipmpd to exit by itself and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<i32> {
        let until = Instant::now() + timeout;
        let child = self.child.as_mut().context("ipmpd not running")?;
        while Instant::now() < until {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status.code().unwrap_or(-1));
            }
            thread::sleep(Duration::from_millis(20));
        }
        bail!("ipmpd did not exit within {timeout:?}")
    }

    /// ipmpd's process id (nsenter execs ipmpd, so the child is ipmpd).
    pub fn pid(&self) -> Result<u32> {
        Ok(self.child.as_ref().context("ipmpd not running")?.id())
    }

    pub fn ctl(&self, args: &[&str]) -> Result<Output> {
        Ok(Command::new(bin("ipmpctl"))
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()?)
    }

    /// [`Self::ctl`], failing with what ipmpctl said unless it succeeds.
    pub fn ctl_ok(&self, args: &[&str]) -> Result<Output> {
        let out = self.ctl(args)?;
        if !out.status.success() {
            bail!(
                "ipmpctl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out)
    }

    /// [`Self::ctl`], failing unless ipmpd refused the request (ipmpctl's
    /// exit status 1); returns the reason ipmpctl gave.
    pub fn ctl_refused(&self, args: &[&str]) -> Result<String> {
        let out = self.ctl(args)?;
        let reason = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.code() != Some(1) {
            bail!(
                "ipmpctl {} was not refused: {:?} {reason}",
                args.join(" "),
                out.status
            );
        }
        Ok(reason)
    }

    /// `ipmpctl stat MODE --json` as JSON.
    pub fn stat(&self, mode: &str) -> Result<Value> {
        let out = self.ctl_ok(&["stat", mode, "--json"])?;
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// The `stat -i` row of `member`.
    pub fn member(&self, member: &str) -> Result<Value> {
        let rows = self.stat("-i")?;
        rows.as_array()
            .and_then(|r| r.iter().find(|m| m["interface"] == member).cloned())
            .with_context(|| format!("{member} missing from stat -i"))
    }

    /// Waits until `check` holds, failing with `what` and the log.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Daemon) -> Result<bool>,
    ) -> Result<()> {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if check(self).unwrap_or(false) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "timed out after {timeout:?} waiting for {what}; ipmpd log:\n{}",
            self.log_text()
        )
    }

    /// Waits until `stat -i` shows `member` with `field` = `value`.
    pub fn wait_member(&self, member: &str, field: &str, value: &str) -> Result<()> {
        self.wait_for(
            &format!("{member} {field}={value}"),
            Duration::from_secs(10),
            |d| Ok(d.member(member)?[field] == value),
        )
    }

    /// Waits until `stat -g` shows the first group in `state`.
    pub fn wait_group(&self, state: &str) -> Result<()> {
        self.wait_for(
            &format!("group state {state}"),
            Duration::from_secs(10),
            |d| Ok(d.stat("-g")?[0]["state"] == state),
        )
    }

    /// Waits until `member` of group production0 has had a probe
    /// acknowledged (read from the metrics at `metrics`, inside `ns`):
    /// before that, losses fall in the start-up quiet period and fail
    /// nothing (in.mpathd's rule).
    pub fn wait_acked(&self, ns: &Netns, metrics: &str, member: &str) -> Result<()> {
        let series =
            format!("ipmp_probes_acked_total{{group=\"production0\",interface=\"{member}\"}}");
        self.wait_for(
            &format!("an acknowledged probe of {member}"),
            Duration::from_secs(30),
            |_| {
                Ok(
                    crate::http::sample(&crate::http::get(ns, metrics, "/metrics")?, &series)
                        .is_some_and(|n| n > 0.0),
                )
            },
        )
    }

    /// Waits until `member` probes steadily: a probe acknowledged from now
    /// on in each family, IPv4 and IPv6, and by every target `stat -t`
    /// then lists for it, as `stat -p` streams them. A member fails only
    /// once every family with targets has lost its probes: a family still
    /// starting (its link-local address in duplicate address detection, no
    /// target yet) or not answered since a repair would make a failure wait
    /// for it, longer than the FDT promises. And a target not probed yet
    /// has no neighbour entry: probes to it sent during a cut wait in the
    /// kernel's queue and, released by the repair, read as round trips of
    /// a second, which raise the FDT.
    pub fn wait_probing_steadily(&self, member: &str) -> Result<()> {
        let mut follower = Command::new(bin("ipmpctl"))
            .arg("--socket")
            .arg(&self.socket)
            .args(["stat", "-p", "-n", "--json"])
            .stdout(Stdio::piped())
            .spawn()
            .context("starting ipmpctl stat -p")?;
        let probes = lines_of(follower.stdout.take().context("no stdout")?);
        let mut acked = std::collections::HashSet::new();
        let mut targets: Option<Vec<String>> = None;
        let until = Instant::now() + Duration::from_secs(30);
        let steady = loop {
            if let Ok(line) = probes.recv_timeout(Duration::from_millis(100)) {
                let probe: Value = serde_json::from_str(&line)?;
                if probe["interface"] == member
                    && probe["rtt"].as_str().is_some_and(|r| !r.is_empty())
                {
                    acked.extend(probe["target"].as_str().map(str::to_string));
                }
            }
            let both_families = [false, true]
                .iter()
                .all(|&v6| acked.iter().any(|t| t.contains(':') == v6));
            if both_families && targets.is_none() {
                targets = Some(self.targets(member)?);
            }
            if targets
                .as_ref()
                .is_some_and(|all| all.iter().all(|t| acked.contains(t)))
            {
                break true;
            }
            if Instant::now() > until {
                break false;
            }
        };
        let _ = follower.kill();
        let _ = follower.wait();
        if !steady {
            bail!(
                "{member} did not probe steadily in 30 s: acknowledged by {acked:?}, \
                 targets {targets:?}"
            );
        }
        Ok(())
    }

    /// The probe targets of `member`, every family (`stat -t`).
    fn targets(&self, member: &str) -> Result<Vec<String>> {
        let out = self.ctl_ok(&["stat", "-t", "-n", "--json"])?;
        let rows: Value = serde_json::from_slice(&out.stdout)?;
        Ok(rows
            .as_array()
            .context("stat -t is no list")?
            .iter()
            .filter(|r| r["interface"] == member)
            .filter_map(|r| r["targets"].as_str())
            .flat_map(str::split_whitespace)
            .filter(|t| *t != "--")
            .map(str::to_string)
            .collect())
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.pin_dir);
        let _ = fs::remove_dir_all(&self.dir);
    }
}
