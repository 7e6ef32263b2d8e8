//! The control socket is open to every local user: what one of them sends
//! costs ipmpd a small bounded amount, and ipmpd stays responsive to root.
//! Also ipmpctl's own output errors, and `ipmpd --socket` on a path that
//! is not a stale socket.
use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{ensure, Context, Result};
use ipmp_tests::{
    daemon::{bin, Daemon},
    netns::{unique, Netns},
};

/// A daemon with no group: the control socket is all there is.
fn daemon() -> Result<(Netns, Daemon)> {
    let ns = Netns::create(&unique("ctl"))?;
    let d = Daemon::start(&ns, "")?;
    Ok((ns, d))
}

/// `nobody`: a local user without privileges.
const NOBODY: libc::uid_t = 65534;

/// Connects to `socket` as `nobody`: only the connecting thread takes the
/// user's identity (the raw system call, unlike libc's setresuid, changes
/// one thread), and the peer credentials ipmpd sees are those of connect.
fn connect_unprivileged(socket: &Path) -> Result<UnixStream> {
    let socket = socket.to_path_buf();
    thread::spawn(move || -> Result<UnixStream> {
        // SAFETY: plain system calls changing this thread's credentials.
        let rc = unsafe {
            libc::syscall(libc::SYS_setresgid, NOBODY, NOBODY, NOBODY);
            libc::syscall(libc::SYS_setresuid, NOBODY, NOBODY, NOBODY)
        };
        ensure!(rc == 0, "setresuid: {}", std::io::Error::last_os_error());
        UnixStream::connect(&socket).context("connecting as nobody")
    })
    .join()
    .map_err(|_| anyhow::anyhow!("connecting thread panicked"))?
}

/// A number from /proc/PID/status, in kB.
fn status_kb(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim_start_matches(':').split_whitespace().next())
        .context(format!("no {field}"))?
        .parse()
        .context(field.to_string())
}

/// The next line ipmpd sends, within `timeout`.
fn read_line(stream: &UnixStream, timeout: Duration) -> Result<String> {
    stream.set_read_timeout(Some(timeout))?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(line)
}

#[test]
fn endless_requests_are_cut_off_and_memory_stays_bounded() -> Result<()> {
    let (_ns, d) = daemon()?;
    let pid = d.pid()?;
    let rss_before = status_kb(pid, "VmRSS")?;
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let stream = connect_unprivileged(&d.socket)?;
            Ok(thread::spawn(move || -> Result<String> {
                // 32 MiB without a newline, as long as ipmpd takes them.
                let chunk = vec![b'x'; 64 * 1024];
                for _ in 0..512 {
                    if (&stream).write_all(&chunk).is_err() {
                        break;
                    }
                }
                read_line(&stream, Duration::from_secs(10))
            }))
        })
        .collect::<Result<_>>()?;
    for client in clients {
        let answer = client
            .join()
            .map_err(|_| anyhow::anyhow!("client panicked"))?
            .context("no answer to an endless request")?;
        ensure!(
            answer.contains("request longer than 65536 bytes"),
            "answer: {answer}"
        );
    }
    let peak = status_kb(pid, "VmHWM")?;
    ensure!(
        peak < rss_before + 16 * 1024,
        "ipmpd grew from {rss_before} kB to a peak of {peak} kB"
    );
    d.ctl_ok(&["stat", "-g"])
        .context("ipmpd stopped answering")?;
    Ok(())
}

#[test]
fn idle_connections_are_capped_timed_out_and_never_lock_root_out() -> Result<()> {
    let (_ns, d) = daemon()?;
    let held: Vec<UnixStream> = (0..32)
        .map(|_| connect_unprivileged(&d.socket))
        .collect::<Result<_>>()?;
    // Past the cap: refused at once, with the reason.
    let extra = connect_unprivileged(&d.socket)?;
    let refusal = read_line(&extra, Duration::from_secs(5))?;
    ensure!(
        refusal.contains("already serving 32 connections"),
        "the 33rd connection got: {refusal:?}"
    );
    // Root is still answered while every user slot is taken.
    d.ctl_ok(&["stat", "-g"]).context("root was locked out")?;
    // A connection that sends nothing is closed after the request timeout.
    let started = Instant::now();
    let first = read_line(&held[0], Duration::from_secs(15))?;
    ensure!(
        first.contains("no complete request within 5 s"),
        "an idle connection got: {first:?}"
    );
    ensure!(
        started.elapsed() < Duration::from_secs(10),
        "idle connection held for {:?}",
        started.elapsed()
    );
    for stream in &held[1..] {
        let line = read_line(stream, Duration::from_secs(10))?;
        ensure!(line.contains("no complete request"), "got {line:?}");
    }
    // The slots are free again.
    let again = connect_unprivileged(&d.socket)?;
    (&again).write_all(b"{\"request\":\"status\"}\n")?;
    let status = read_line(&again, Duration::from_secs(5))?;
    ensure!(status.starts_with("{\"status\""), "status: {status}");
    Ok(())
}

/// CPU time (user + system) of a process so far.
fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces): state is 3rd,
    // utime the 14th and stime the 15th of the whole line.
    let after = stat.rsplit_once(')').context("odd stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // SAFETY: plain sysconf call.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Ok(Duration::from_millis(ticks * 1000 / hz))
}

#[test]
fn out_of_file_descriptors_the_accept_loop_backs_off() -> Result<()> {
    let (_ns, d) = daemon()?;
    let pid = d.pid()?;
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
    // Room for two more descriptors: the third connection cannot be accepted.
    let limit = libc::rlimit {
        rlim_cur: open + 2,
        rlim_max: open + 2,
    };
    // SAFETY: prlimit on ipmpd with a valid new limit and no old one asked.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    ensure!(rc == 0, "prlimit: {}", std::io::Error::last_os_error());
    let held: Vec<UnixStream> = (0..6)
        .map(|_| UnixStream::connect(&d.socket))
        .collect::<Result<_, _>>()?;
    d.wait_for(
        "the failed accept in the log",
        Duration::from_secs(5),
        |d| Ok(d.log_text().contains("cannot accept a connection")),
    )?;
    let before = cpu_time(pid)?;
    thread::sleep(Duration::from_secs(2));
    let spent = cpu_time(pid)? - before;
    ensure!(
        spent < Duration::from_millis(300),
        "ipmpd spent {spent:?} of CPU in 2 s while out of file descriptors"
    );
    // Once the idle connections time out, the queued ones are served.
    drop(held);
    d.wait_ready(Duration::from_secs(20))?;
    Ok(())
}

#[test]
fn ipmpctl_output_errors_end_it_without_a_panic() -> Result<()> {
    let (_ns, d) = daemon()?;
    let full = Command::new(bin("ipmpctl"))
        .arg("--socket")
        .arg(&d.socket)
        // JSON: an empty list is still output (a table without rows is not).
        .args(["stat", "-g", "--json"])
        .stdout(std::fs::File::create("/dev/full")?)
        .output()?;
    let stderr = String::from_utf8_lossy(&full.stderr);
    ensure!(
        full.status.code() == Some(1) && stderr.contains("cannot write to standard output"),
        "> /dev/full: {:?} {stderr}",
        full.status
    );
    ensure!(!stderr.contains("panicked"), "{stderr}");
    // A reader that went away (`| head -0`): quiet, status 0.
    let mut child = Command::new(bin("ipmpctl"))
        .arg("--socket")
        .arg(&d.socket)
        .args(["stat", "-g", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .context("no stderr")?
        .read_to_string(&mut stderr)?;
    let status = child.wait()?;
    ensure!(
        status.code() == Some(0) && stderr.is_empty(),
        "closed pipe: {status:?} {stderr}"
    );
    Ok(())
}

/// ipmpd (no group) with `--socket socket` in `ns`; killed and its pins
/// removed on drop.
struct Ipmpd {
    child: std::process::Child,
    pin_dir: PathBuf,
}

impl Ipmpd {
    fn start(ns: &Netns, dir: &Path, socket: &Path) -> Result<Ipmpd> {
        let config = dir.join("ipmp.toml");
        std::fs::write(&config, "")?;
        let pin_dir = PathBuf::from(format!("/sys/fs/bpf/{}", unique("pins")));
        let child = ns
            .command(bin("ipmpd").to_str().unwrap_or("ipmpd"))
            .arg("--config")
            .arg(&config)
            .arg("--socket")
            .arg(socket)
            .arg("--pin-dir")
            .arg(&pin_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        Ok(Ipmpd { child, pin_dir })
    }

    /// The exit code and log, failing if ipmpd does not exit within 10 s.
    fn exit(mut self) -> Result<(i32, String)> {
        let until = Instant::now() + Duration::from_secs(10);
        let code = loop {
            if let Some(status) = self.child.try_wait()? {
                break status.code().unwrap_or(-1);
            }
            ensure!(Instant::now() < until, "ipmpd kept running");
            thread::sleep(Duration::from_millis(20));
        };
        let mut log = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr.read_to_string(&mut log)?;
        }
        Ok((code, log))
    }
}

impl Drop for Ipmpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.pin_dir);
    }
}

#[test]
fn socket_path_that_is_not_a_stale_socket_is_left_alone() -> Result<()> {
    let ns = Netns::create(&unique("ctl"))?;
    let dir = std::env::temp_dir().join(unique("sock"));
    std::fs::create_dir_all(&dir)?;
    let result = (|| {
        let precious = dir.join("precious");
        std::fs::write(&precious, "keep me\n")?;
        let (code, log) = Ipmpd::start(&ns, &dir, &precious)?.exit()?;
        ensure!(
            code == 1 && log.contains("exists and is not a socket"),
            "exit {code}: {log}"
        );
        ensure!(
            std::fs::read_to_string(&precious)? == "keep me\n",
            "the file was replaced"
        );
        // A stale socket (as a killed ipmpd leaves) is replaced.
        let stale = dir.join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale)?);
        let _ipmpd = Ipmpd::start(&ns, &dir, &stale)?;
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let out = Command::new(bin("ipmpctl"))
                .arg("--socket")
                .arg(&stale)
                .args(["stat", "-g"])
                .output()?;
            if out.status.success() {
                break;
            }
            ensure!(
                Instant::now() < until,
                "ipmpd did not take over the stale socket"
            );
            thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
