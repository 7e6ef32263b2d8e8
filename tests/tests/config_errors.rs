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
