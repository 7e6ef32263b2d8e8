//! What a host install ships: the example configuration is valid, and the
//! man pages and completions come from the real command-line definitions.
use std::{path::Path, process::Command};

use anyhow::{ensure, Result};
use ipmp_tests::daemon::bin;

#[test]
fn the_example_configuration_passes_check() -> Result<()> {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/ipmp.toml");
    let out = Command::new(bin("ipmpd"))
        .arg("--check")
        .arg("--config")
        .arg(&example)
        .output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[test]
fn man_pages_and_completions_are_generated() -> Result<()> {
    let run = |program: &str, args: &[&str]| -> Result<String> {
        let out = Command::new(bin(program)).args(args).output()?;
        ensure!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    };
    ensure!(
        run("ipmpd", &["--manpage"])?.contains(".TH ipmpd 8"),
        "no ipmpd(8)"
    );
    let ipmpctl = run("ipmpctl", &["manpage"])?;
    ensure!(
        ipmpctl.contains(".TH ipmpctl 8") && ipmpctl.contains("offline"),
        "no ipmpctl(8)"
    );
    for shell in ["bash", "zsh", "fish"] {
        ensure!(
            run("ipmpctl", &["completions", shell])?.contains("teardown"),
            "{shell} completions lack teardown"
        );
    }
    Ok(())
}

#[test]
fn the_systemd_unit_reloads_with_hup_and_checks_first() -> Result<()> {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/ipmpd.service"),
    )?;
    for line in [
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ExecStartPre=/usr/local/sbin/ipmpd --check",
        "CAP_NET_RAW",
        "CAP_BPF",
    ] {
        ensure!(unit.contains(line), "unit lacks {line}");
    }
    Ok(())
}
