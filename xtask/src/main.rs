//! `cargo xtask`: everything around the build. `setup` runs first in every
//! command that needs it, so a fresh machine needs nothing by hand.
mod bench;
mod demo;
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
            package::run()
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
    build()?;
    // --tests: there are no doc-tests, and an empty doc-test run would be
    // the last word of the output.
    cmd(cargo().args([
        "test",
        "--tests",
        "--package",
        "ipmp-common",
        "--package",
        "ipmp-user",
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
        .env("IPMP_BIN_DIR", bin_dir()))
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
