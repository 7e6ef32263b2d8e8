//! Installs what building and testing ipmp needs, once: nightly rust-src
//! (for -Z build-std), bpf-linker linked against the nightly toolchain's
//! LLVM, cargo-deb for the Debian package, and the Debian tools the tests
//! use. Each step checks first, so a
//! second run installs nothing.
use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::{cmd, output};

const BPF_LINKER_VERSION: &str = "0.13.0";
/// The newest cargo-deb that builds on the image's stable rustc (1.95).
const CARGO_DEB_VERSION: &str = "3.8.0";
/// Debian packages the tests, demo and bench call (binary, package).
const TOOLS: [(&str, &str); 12] = [
    ("ip", "iproute2"),
    ("nsenter", "util-linux"),
    ("ping", "iputils-ping"),
    ("tcpdump", "tcpdump"),
    ("iperf3", "iperf3"),
    ("bpftool", "bpftool"),
    ("setpriv", "util-linux"),
    // promtool and a real Prometheus server for the metrics tests.
    ("prometheus", "prometheus"),
    // Ask for the data addresses as a peer would (inbound tests).
    ("arping", "arping"),
    ("ndisc6", "ndisc6"),
    // The package install test: dpkg into a scratch root, and the
    // maintainer scripts' enablement of the unit there.
    ("dpkg-deb", "dpkg"),
    ("deb-systemd-helper", "init-system-helpers"),
];

pub fn setup() -> Result<()> {
    rust_src()?;
    bpf_linker()?;
    cargo_deb()?;
    debian_tools()?;
    Ok(())
}

fn rust_src() -> Result<()> {
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        "nightly",
    ]))
    .context(
        "the nightly toolchain is needed for the eBPF build (rustup toolchain install nightly)",
    )?;
    if !installed.lines().any(|l| l.starts_with("rust-src")) {
        eprintln!("setup: adding rust-src to the nightly toolchain");
        cmd(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
    }
    Ok(())
}

fn bpf_linker() -> Result<()> {
    if Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Ok(());
    }
    // bpf-linker links to the nightly toolchain's libLLVM through a folder
    // that must outlive the install (its rpath points there).
    let sysroot = PathBuf::from(
        output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))?.trim(),
    );
    let lib = sysroot.join("lib");
    let llvm = std::fs::read_dir(&lib)?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .find(|n| n.starts_with("libLLVM.so."))
        .with_context(|| format!("no libLLVM.so.* in {}", lib.display()))?;
    // libLLVM.so.22.1-rust-... → LLVM 22.
    let major = llvm
        .trim_start_matches("libLLVM.so.")
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string();
    let prefix = cargo_home().join("ipmp-llvm");
    let prefix_lib = prefix.join("lib");
    std::fs::create_dir_all(&prefix_lib)?;
    for name in [llvm.as_str(), "libLLVM.so"] {
        let link = prefix_lib.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(lib.join(&llvm), &link)?;
    }
    eprintln!(
        "setup: installing bpf-linker {BPF_LINKER_VERSION} against LLVM {major} ({})",
        prefix.display()
    );
    cmd(Command::new("cargo")
        .args([
            "install",
            "bpf-linker",
            "--version",
            BPF_LINKER_VERSION,
            "--no-default-features",
            "--locked",
        ])
        .args(["--features", &format!("llvm-{major}")])
        .env("LLVM_PREFIX", &prefix))
}

fn cargo_deb() -> Result<()> {
    let installed = Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(CARGO_DEB_VERSION)
        });
    if installed {
        return Ok(());
    }
    eprintln!("setup: installing cargo-deb {CARGO_DEB_VERSION}");
    cmd(Command::new("cargo").args([
        "install",
        "cargo-deb",
        "--version",
        CARGO_DEB_VERSION,
        "--locked",
    ]))
}

fn cargo_home() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cargo")
        })
}

fn debian_tools() -> Result<()> {
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(bin, _)| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {bin}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|&(_, pkg)| pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !Command::new("apt-get")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        bail!(
            "missing tools ({}) and no apt-get to install them",
            missing.join(", ")
        );
    }
    eprintln!("setup: installing {}", missing.join(" "));
    cmd(Command::new("apt-get").arg("update").arg("-q"))?;
    cmd(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}
