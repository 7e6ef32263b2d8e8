//! A bad configuration is refused with the line and the problem, and ipmpd
//! touches nothing.
use std::time::Duration;

use anyhow::{ensure, Result};
use ipmp_tests::{
    daemon::Daemon,
    netns::{unique, Netns},
};

fn refused(config: &str, expected: &[&str]) -> Result<()> {
    let ns = Netns::create(&unique("cfg"))?;
    let mut d = Daemon::spawn(&ns, config)?;
    let code = d.wait_exit(Duration::from_secs(10))?;
    let log = d.log_text();
    ensure!(
        code == 1,
        "ipmpd exited with {code} for a bad config; log:\n{log}"
    );
    for e in expected {
        ensure!(log.contains(e), "message lacks {e:?}:\n{log}");
    }
    let links = ns.ip("-br link show")?;
    ensure!(
        links.lines().count() == 1,
        "ipmpd changed the namespace's links:\n{links}"
    );
    ensure!(!d.pin_dir.exists(), "ipmpd created pins");
    Ok(())
}

#[test]
fn unknown_key_names_its_line() -> Result<()> {
    refused("[daemon]\nfailbak = true\n", &["ipmp.toml:2:", "failbak"])
}

#[test]
fn too_small_fdt_names_its_line() -> Result<()> {
    refused(
        "[daemon]\nfailure_detection_time_ms = 5\n\n[[group]]\nname = \"g0\"\ndata_addresses = [\"192.0.2.200/24\"]\n[[group.member]]\ninterface = \"eth9\"\n",
        &["ipmp.toml:2:", "failure_detection_time_ms"],
    )
}

#[test]
fn bad_address_names_its_line() -> Result<()> {
    refused(
        "[[group]]\nname = \"g0\"\ndata_addresses = [\"192.0.2.300/24\"]\n[[group.member]]\ninterface = \"eth9\"\n",
        &["ipmp.toml:3:"],
    )
}

#[test]
fn check_accepts_a_valid_file_and_rejects_a_bad_one() -> Result<()> {
    let dir = std::env::temp_dir().join(unique("check"));
    std::fs::create_dir_all(&dir)?;
    let good = dir.join("good.toml");
    let bad = dir.join("bad.toml");
    std::fs::write(&good, "[[group]]\nname = \"g0\"\ndata_addresses = [\"192.0.2.200/24\"]\n[[group.member]]\ninterface = \"eth9\"\n")?;
    std::fs::write(&bad, "[[group]]\nname = \"g0\"\n")?;
    let run = |f: &std::path::Path| {
        std::process::Command::new(ipmp_tests::daemon::bin("ipmpd"))
            .arg("--check")
            .arg("--config")
            .arg(f)
            .output()
    };
    let (ok, ko) = (run(&good)?, run(&bad)?);
    std::fs::remove_dir_all(&dir)?;
    ensure!(
        ok.status.code() == Some(0),
        "valid file refused: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    ensure!(ko.status.code() == Some(1), "invalid file accepted");
    ensure!(
        String::from_utf8_lossy(&ko.stderr).contains("bad.toml:"),
        "no file name in the error"
    );
    Ok(())
}

/// `ipmpd --check PATH`, killed if it has not finished within 5 s.
fn check(path: &std::path::Path) -> Result<std::process::Output> {
    let mut child = std::process::Command::new(ipmp_tests::daemon::bin("ipmpd"))
        .arg("--check")
        .arg("--config")
        .arg(path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while child.try_wait()?.is_none() {
        if std::time::Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("ipmpd --check {} did not finish", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child.wait_with_output()?)
}

/// One group `name` with `data` addresses and `targets` (TOML list items)
/// and one member (its `member` lines), after `daemon` lines: raw TOML, as
/// the refusals need values the schema does not take.
fn group_file(daemon: &str, name: &str, data: &str, targets: &str, member: &str) -> String {
    format!(
        "[daemon]\n{daemon}\n[[group]]\nname = \"{name}\"\ndata_addresses = [{data}]\n\
         targets = [{targets}]\n[[group.member]]\n{member}\n"
    )
}

#[test]
fn check_refuses_what_applying_would_fail_on_or_harm() -> Result<()> {
    let dir = std::env::temp_dir().join(unique("check"));
    std::fs::create_dir_all(&dir)?;
    let data = "\"192.0.2.200/24\"";
    let member = "interface = \"eth9\"\ntest_address = \"192.0.2.201/24\"";
    let seventy: Vec<String> = (1..=70).map(|i| format!("\"192.0.2.{i}/24\"")).collect();
    let cases = [
        (
            group_file("", "g0", "\"0.0.0.0/0\", \"::/0\"", "", member),
            "is the unspecified address",
        ),
        (
            group_file("", "lo", data, "", member),
            "is the loopback interface",
        ),
        (
            group_file("", "g0", data, "", "interface = \"lo\""),
            "is the loopback interface",
        ),
        (
            group_file("", "g0", &seventy.join(", "), "", "interface = \"eth9\""),
            "the dataplane holds at most 64",
        ),
        (
            group_file(
                "",
                "g0",
                data,
                "",
                "interface = \"eth9\"\ntest_address = \"198.51.100.201/24\"",
            ),
            "outside every data subnet",
        ),
        (
            group_file("", "g0", data, "\"255.255.255.255\"", member),
            "is the broadcast address",
        ),
        (
            group_file("", "g0", data, "\"224.0.0.1\"", member),
            "is a multicast address",
        ),
        (
            group_file("", "g0", data, "\"0.0.0.0\"", member),
            "is the unspecified address",
        ),
        (
            group_file("", "g0", data, "\"192.0.2.200\"", member),
            "is an address of group",
        ),
        (
            group_file("", "g0", "\"127.0.0.5/8\"", "", "interface = \"eth9\""),
            "is a loopback address",
        ),
        (
            group_file(
                "",
                "g0",
                "\"::ffff:192.0.2.200/120\"",
                "",
                "interface = \"eth9\"",
            ),
            "IPv4-mapped",
        ),
        (
            group_file(
                "failure_detection_time_ms = 9223372036854775808",
                "g0",
                data,
                "",
                member,
            ),
            "above the maximum",
        ),
        (
            group_file(
                "startup_quiet_ms = 9223372036854775808",
                "g0",
                data,
                "",
                member,
            ),
            "above the maximum",
        ),
    ];
    let result = (|| {
        for (i, (text, expected)) in cases.iter().enumerate() {
            let path = dir.join(format!("case{i}.toml"));
            std::fs::write(&path, text)?;
            let out = check(&path)?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            ensure!(
                out.status.code() == Some(1) && stderr.contains(expected),
                "case {i} ({expected}): {:?} {stderr}\n{text}",
                out.status
            );
        }
        // Not regular files: a device that never ends, a FIFO nobody writes.
        let out = check(std::path::Path::new("/dev/zero"))?;
        ensure!(
            out.status.code() == Some(1)
                && String::from_utf8_lossy(&out.stderr).contains("is not a regular file"),
            "/dev/zero: {:?}",
            out
        );
        let fifo = dir.join("fifo.toml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU)?;
        let out = check(&fifo)?;
        ensure!(
            String::from_utf8_lossy(&out.stderr).contains("is not a regular file"),
            "FIFO: {out:?}"
        );
        let big = dir.join("big.toml");
        std::fs::write(&big, vec![b'#'; 2 * 1024 * 1024])?;
        let out = check(&big)?;
        ensure!(
            String::from_utf8_lossy(&out.stderr).contains("is larger than 1024 KiB"),
            "2 MiB file: {out:?}"
        );
        // Control bytes in the file are escaped in the message.
        let escape = dir.join("escape.toml");
        std::fs::write(&escape, group_file("", "g\\u001b[2J0", data, "", member))?;
        let out = check(&escape)?;
        ensure!(
            out.status.code() == Some(1) && !out.stderr.contains(&0x1b),
            "escape: {out:?}"
        );
        Ok(())
    })();
    std::fs::remove_dir_all(&dir)?;
    result
}

/// A group name that is already an interface ipmpd did not make (here a
/// bridge) is refused before anything is touched.
#[test]
fn group_name_of_a_foreign_interface_is_refused() -> Result<()> {
    let ns = Netns::create(&unique("cfg"))?;
    ns.ip("link add taken0 type bridge")?;
    ns.ip("link add eth9 type veth peer name eth9p")?;
    let mut d = Daemon::spawn(
        &ns,
        "[[group]]\nname = \"taken0\"\ndata_addresses = [\"192.0.2.200/24\"]\n\
         [[group.member]]\ninterface = \"eth9\"\n",
    )?;
    let code = d.wait_exit(Duration::from_secs(10))?;
    let log = d.log_text();
    ensure!(
        code == 1 && log.contains("taken0 already exists and is not an IPMP group interface"),
        "exit {code}: {log}"
    );
    let check = ipmp_tests::netns::run(
        ns.command(ipmp_tests::daemon::bin("ipmpd").to_str().unwrap_or("ipmpd"))
            .arg("--check")
            .arg("--config")
            .arg(&d.config),
    );
    ensure!(
        check.is_err_and(|e| e.to_string().contains("taken0 already exists")),
        "--check accepted a group named after the bridge"
    );
    let addrs = ns.ip("addr show taken0")?;
    ensure!(
        !addrs.contains("192.0.2.200"),
        "the bridge got the data address: {addrs}"
    );
    ensure!(!d.pin_dir.exists(), "ipmpd created pins");
    Ok(())
}
