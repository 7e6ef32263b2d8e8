//! `cargo xtask`: everything around the build. `setup` runs first in every
//! command that needs it, so a fresh machine needs nothing by hand.
mod bench;
mod demo;
mod house;
mod package;
mod setup;
mod testbed;

use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the toolchain pieces and tools (idempotent).
    Setup,
    /// Build ipmpd, ipmpctl and the kernel programs.
    Build,
    /// Run every test: unit tests, then the integration tests in namespaces (root).
    Test,
    /// The tutorial's topology in namespaces, for trying ipmpd by hand.
    Testbed {
        #[arg(value_parser = ["up", "down"])]
        action: String,
    },
    /// Play the IPMP tutorial against ipmpd, with ipmpstat after each step.
    Demo,
    /// Measure the dataplane and failover; writes target/bench/results.json.
    Bench,
    /// Release binaries, systemd unit, example config, man pages and
    /// completions in target/package, for installing on a host.
    Package,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Task::Setup => setup::setup(),
        Task::Build => build(),
        Task::Test => test(),
        Task::Testbed { action } if action == "up" => {
            build()?;
            testbed::up()
        }
        Task::Testbed { .. } => testbed::down(),
        Task::Demo => {
            build()?;
            demo::run()
        }
        Task::Package => {
            setup::setup()?;
            cmd(cargo().args(["build", "--release", "--package", "ipmp-user", "--bins"]))?;
            package::deb(package::Profile::Release).map(drop)
        }
        Task::Bench => {
            // Timing a debug ipmpd would measure the compiler, not ipmp.
            setup::setup()?;
            cmd(cargo().args(["build", "--release", "--package", "ipmp-user", "--bins"]))?;
            std::env::set_var("IPMP_BIN_DIR", workspace().join("target/release"));
            bench::run()
        }
    }
}

fn build() -> Result<()> {
    setup::setup()?;
    cmd(cargo().args(["build", "--package", "ipmp-user", "--bins"]))
}

fn test() -> Result<()> {
    house::check(&workspace())?;
    build()?;
    // The install test takes the package around the debug binaries just
    // built: the same files and scripts, without a second (release) build.
    let deb = package::deb(package::Profile::Debug)?;
    unit_security()?;
    // --tests: there are no doc-tests, and an empty doc-test run would be
    // the last word of the output.
    cmd(cargo().args([
        "test",
        "--tests",
        "--package",
        "ipmp-common",
        "--package",
        "ipmp-user",
        "--package",
        "xtask",
    ]))?;
    cmd(cargo()
        .args([
            "test",
            "--tests",
            "--package",
            "ipmp-tests",
            "--",
            "--test-threads=2",
        ])
        .env("IPMP_BIN_DIR", bin_dir())
        .env("IPMP_DEB", deb))
}

/// The unit's exposure as `systemd-analyze security` scores it (README,
/// "Installing on a host"); fails when a change weakens it past 4.0.
fn unit_security() -> Result<()> {
    let unit = workspace().join("packaging/ipmpd.service");
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("systemd-analyze not found (Debian package systemd): unit hardening not scored");
        return Ok(());
    }
    let report = output(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--threshold=40"])
            .arg(&unit),
    )
    .context("the unit's exposure is above 4.0 (systemd-analyze security)")?;
    let score = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or("no overall exposure line");
    println!("{}", score.trim());
    Ok(())
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace());
    c
}

pub fn workspace() -> std::path::PathBuf {
    let xtask = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}

pub fn bin_dir() -> std::path::PathBuf {
    workspace().join("target/debug")
}

/// Runs a command, failing when it fails.
pub fn cmd(c: &mut Command) -> Result<()> {
    let status = c.status().with_context(|| format!("running {c:?}"))?;
    if !status.success() {
        bail!("{c:?} failed with {status}");
    }
    Ok(())
}

/// Runs a command and returns its standard output.
pub fn output(c: &mut Command) -> Result<String> {
    let out = c.output().with_context(|| format!("running {c:?}"))?;
    if !out.status.success() {
        bail!("{c:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
