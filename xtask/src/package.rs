//! `cargo xtask package`: what a host needs, in target/package: the
//! release binaries (with ipmpstat and if_mpadm as links to ipmpctl), the
//! systemd unit, an example configuration, man pages and shell completions
//! generated from the command-line definitions.
use std::{fs, os::unix::fs::symlink, path::Path, process::Command};

use anyhow::{Context, Result};

use crate::{cmd, output, workspace};

pub fn run() -> Result<()> {
    let out = workspace().join("target/package");
    let _ = fs::remove_dir_all(&out);
    for dir in ["sbin", "man/man8", "completions", "systemd", "etc/ipmp"] {
        fs::create_dir_all(out.join(dir))?;
    }
    let release = workspace().join("target/release");
    for bin in ["ipmpd", "ipmpctl"] {
        fs::copy(release.join(bin), out.join("sbin").join(bin))
            .with_context(|| format!("copying {bin}"))?;
    }
    for alias in ["ipmpstat", "if_mpadm"] {
        symlink("ipmpctl", out.join("sbin").join(alias))?;
    }
    fs::copy(
        workspace().join("packaging/ipmpd.service"),
        out.join("systemd/ipmpd.service"),
    )?;
    fs::copy(
        workspace().join("packaging/ipmp.toml"),
        out.join("etc/ipmp/ipmp.toml"),
    )?;
    let ipmpctl = out.join("sbin/ipmpctl");
    write(
        &out.join("man/man8/ipmpd.8"),
        &output(Command::new(out.join("sbin/ipmpd")).arg("--manpage"))?,
    )?;
    write(
        &out.join("man/man8/ipmpctl.8"),
        &output(Command::new(&ipmpctl).arg("manpage"))?,
    )?;
    for (shell, file) in [
        ("bash", "ipmpctl.bash"),
        ("zsh", "_ipmpctl"),
        ("fish", "ipmpctl.fish"),
    ] {
        write(
            &out.join("completions").join(file),
            &output(Command::new(&ipmpctl).args(["completions", shell]))?,
        )?;
    }
    // The example must be one ipmpd accepts.
    cmd(Command::new(out.join("sbin/ipmpd"))
        .arg("--check")
        .arg("--config")
        .arg(out.join("etc/ipmp/ipmp.toml")))?;
    println!("Package in {}", out.display());
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
