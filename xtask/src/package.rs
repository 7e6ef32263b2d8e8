//! `cargo xtask package`: the Debian package, built by cargo-deb from the
//! metadata in ipmp-user/Cargo.toml. The man pages and completions are
//! generated from the binaries being packaged, so they always match them.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::{cargo, cmd, output, workspace};

/// Which build of the binaries goes into the package.
#[derive(Clone, Copy)]
pub enum Profile {
    /// `cargo xtask package`: what ships.
    Release,
    /// The test command's package: the same files around the debug binaries
    /// it has just built, so testing the package costs no release build.
    Debug,
}

impl Profile {
    fn folder(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Debug => "debug",
        }
    }

    fn cargo_name(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Debug => "dev",
        }
    }

    /// Where the .deb is written: target/package for release.
    pub fn out_dir(self) -> PathBuf {
        workspace().join(match self {
            Profile::Release => "target/package",
            Profile::Debug => "target/package-debug",
        })
    }
}

/// Builds the .deb from the already built binaries of `profile` and returns
/// its path.
pub fn deb(profile: Profile) -> Result<PathBuf> {
    let bins = workspace().join("target").join(profile.folder());
    generate(&bins)?;
    // The example must be one ipmpd accepts.
    cmd(Command::new(bins.join("ipmpd"))
        .arg("--check")
        .arg("--config")
        .arg(workspace().join("packaging/ipmp.toml")))?;
    let out = profile.out_dir();
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out)?;
    let mut deb = cargo();
    deb.args(["deb", "--package", "ipmp-user", "--no-build", "--strip"])
        .args(["--profile", profile.cargo_name()])
        .arg("--output")
        .arg(&out);
    if let Profile::Debug = profile {
        // cargo-deb warns that it is meant for release builds: it is, the
        // debug build only serves the install test.
        deb.args(["--fast", "--quiet"]);
    }
    let printed = output(&mut deb)?;
    let path = PathBuf::from(printed.trim().lines().last().unwrap_or_default());
    if !path.is_file() {
        bail!("cargo deb printed no package path (got {printed:?})");
    }
    println!("Package: {}", path.display());
    Ok(path)
}

/// Man pages and completions from the binaries' own command-line
/// definitions, into `<bins>/ipmp-generated` where the package metadata
/// looks for them.
fn generate(bins: &Path) -> Result<()> {
    let out = bins.join("ipmp-generated");
    fs::create_dir_all(&out)?;
    let ipmpctl = bins.join("ipmpctl");
    write(
        &out.join("ipmpd.8"),
        &output(Command::new(bins.join("ipmpd")).arg("--manpage"))?,
    )?;
    write(
        &out.join("ipmpctl.8"),
        &output(Command::new(&ipmpctl).arg("manpage"))?,
    )?;
    // Policy wants man pages gzipped; cargo-deb leaves files from the
    // target folder as they are. -n: no timestamp, so builds repeat.
    cmd(Command::new("gzip")
        .args(["-9nf"])
        .arg(out.join("ipmpd.8"))
        .arg(out.join("ipmpctl.8")))?;
    for (shell, file) in [
        ("bash", "ipmpctl.bash"),
        ("zsh", "_ipmpctl"),
        ("fish", "ipmpctl.fish"),
    ] {
        write(
            &out.join(file),
            &output(Command::new(&ipmpctl).args(["completions", shell]))?,
        )?;
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
