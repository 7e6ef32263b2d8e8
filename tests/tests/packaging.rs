//! The Debian package as an operator meets it: installed with dpkg into a
//! scratch root, every file where Debian policy puts it, the unit enabled,
//! the shipped example accepted by the shipped ipmpd, the operator's edits
//! kept across an upgrade and a removal.
//!
//! IPMP_DEB names the package (`cargo xtask test` builds one around the
//! debug binaries; `cargo xtask package` builds target/package/ipmp_*.deb).
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{ensure, Context, Result};
use ipmp_tests::netns::unique;

/// Where files may land (Debian policy and FHS): daemons in /usr/sbin,
/// units in /usr/lib/systemd/system, configuration in /etc, the rest
/// under /usr/share.
const ALLOWED: [&str; 10] = [
    "/usr/sbin/",
    "/usr/lib/systemd/system/",
    "/etc/ipmp/",
    "/usr/share/man/man8/",
    "/usr/share/doc/ipmp/",
    "/usr/share/bash-completion/completions/",
    "/usr/share/zsh/vendor-completions/",
    "/usr/share/fish/vendor_completions.d/",
    "/usr/share/ipmp/prometheus/",
    "/usr/share/ipmp/grafana/",
];

const EXPECTED: [&str; 15] = [
    "/usr/sbin/ipmpd",
    "/usr/sbin/ipmpctl",
    "/usr/sbin/ipmpstat",
    "/usr/sbin/if_mpadm",
    "/usr/lib/systemd/system/ipmpd.service",
    "/etc/ipmp/ipmp.toml",
    "/usr/share/doc/ipmp/copyright",
    "/usr/share/doc/ipmp/examples/ipmp.toml",
    "/usr/share/man/man8/ipmpd.8.gz",
    "/usr/share/man/man8/ipmpctl.8.gz",
    "/usr/share/bash-completion/completions/ipmpctl",
    "/usr/share/zsh/vendor-completions/_ipmpctl",
    "/usr/share/fish/vendor_completions.d/ipmpctl.fish",
    "/usr/share/ipmp/prometheus/ipmp-rules.yml",
    "/usr/share/ipmp/grafana/ipmp-dashboard.json",
];

const CONFIG: &str = "/etc/ipmp/ipmp.toml";
const WANTS: &str = "/etc/systemd/system/multi-user.target.wants/ipmpd.service";

/// A dpkg database in a scratch directory, removed on drop.
struct Root(PathBuf);

impl Root {
    fn new() -> Result<Root> {
        let root = Root(std::env::temp_dir().join(unique("deb")));
        let admin = root.0.join("var/lib/dpkg");
        for dir in ["info", "updates", "triggers"] {
            fs::create_dir_all(admin.join(dir))?;
        }
        for file in ["status", "available"] {
            fs::write(admin.join(file), "")?;
        }
        fs::create_dir_all(root.0.join("var/log"))?;
        Ok(root)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file.trim_start_matches('/'))
    }

    /// dpkg on this root. The maintainer scripts run unchrooted with
    /// DPKG_ROOT set (the root has no shell); they act only inside it.
    /// Dependencies (libc6, ...) are not in the empty root.
    fn dpkg(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("dpkg")
            .arg(format!("--root={}", self.0.display()))
            .arg(format!("--log={}", self.path("var/log/dpkg.log").display()))
            .args(["--force-script-chrootless", "--force-depends"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("running dpkg")?;
        ensure!(
            out.status.success(),
            "dpkg {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn deb() -> Result<PathBuf> {
    let deb = std::env::var_os("IPMP_DEB").map(PathBuf::from).context(
        "set IPMP_DEB to the package to test (cargo xtask test builds one; \
         cargo xtask package builds target/package/ipmp_*.deb)",
    )?;
    ensure!(deb.is_file(), "IPMP_DEB: no file {}", deb.display());
    Ok(deb)
}

fn run(program: &Path, args: &[&str]) -> Result<std::process::Output> {
    Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {}", program.display()))
}

fn gunzip(file: &Path) -> Result<String> {
    let out = run(Path::new("gzip"), &["-dc", &file.to_string_lossy()])?;
    ensure!(out.status.success(), "{} is not gzip", file.display());
    Ok(String::from_utf8(out.stdout)?)
}

#[test]
fn the_package_installs_by_policy_and_keeps_the_operators_config() -> Result<()> {
    let deb = deb()?;
    let deb = deb.to_str().context("package path")?;
    let root = Root::new()?;
    root.dpkg(&["--install", deb])?;

    // Every file where policy says, and everything the package promises.
    let listed = root.dpkg(&["--listfiles", "ipmp"])?;
    for file in listed
        .lines()
        .filter(|l| fs::symlink_metadata(root.path(l)).is_ok_and(|m| !m.is_dir()))
    {
        ensure!(
            ALLOWED.iter().any(|dir| file.starts_with(dir)),
            "{file} is outside the places Debian policy gives a package like this"
        );
    }
    for file in EXPECTED {
        ensure!(
            listed.lines().any(|l| l == file),
            "the package lacks {file}"
        );
    }
    for alias in ["ipmpstat", "if_mpadm"] {
        let link = fs::read_link(root.path(&format!("/usr/sbin/{alias}")))?;
        ensure!(
            link == Path::new("ipmpctl"),
            "{alias} points at {}",
            link.display()
        );
    }
    let conffiles = root.dpkg(&["--status", "ipmp"])?;
    ensure!(
        conffiles.contains(&format!(" {CONFIG} ")),
        "{CONFIG} is not a conffile:\n{conffiles}"
    );
    ensure!(
        gunzip(&root.path("/usr/share/man/man8/ipmpd.8.gz"))?.contains(".TH ipmpd 8"),
        "no ipmpd(8)"
    );
    ensure!(
        gunzip(&root.path("/usr/share/man/man8/ipmpctl.8.gz"))?.contains("offline"),
        "ipmpctl(8) lacks offline"
    );
    ensure!(
        fs::read_to_string(root.path("/usr/share/bash-completion/completions/ipmpctl"))?
            .contains("teardown"),
        "bash completion lacks teardown"
    );
    let unit = fs::read_to_string(root.path("/usr/lib/systemd/system/ipmpd.service"))?;
    ensure!(
        unit.contains("ExecStart=/usr/sbin/ipmpd --config /etc/ipmp/ipmp.toml"),
        "the unit does not start the packaged ipmpd"
    );

    // Enabled for the next boot (postinst starts it only on an upgrade, and
    // only on a running systemd, which a scratch root never is).
    let wants = fs::read_link(root.path(WANTS)).context("ipmpd.service is not enabled")?;
    ensure!(wants == Path::new("/usr/lib/systemd/system/ipmpd.service"));

    // The shipped ipmpd accepts the shipped example.
    let check = run(
        &root.path("/usr/sbin/ipmpd"),
        &["--check", "--config", &root.path(CONFIG).to_string_lossy()],
    )?;
    ensure!(
        check.status.success(),
        "ipmpd --check on the shipped example: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    // ipmpstat is ipmpctl by its name: with no ipmpd, exit 3.
    let stat = Command::new(root.path("/usr/sbin/ipmpstat"))
        .arg("-g")
        .env("IPMP_SOCKET", root.path("/run/ipmp/none.sock"))
        .output()?;
    ensure!(
        stat.status.code() == Some(3),
        "ipmpstat -g without ipmpd: {:?} {}",
        stat.status,
        String::from_utf8_lossy(&stat.stderr)
    );

    // The operator edits the file; an upgrade keeps the edit and the
    // enablement.
    let config = root.path(CONFIG);
    let edited = fs::read_to_string(&config)? + "# edited by the operator\n";
    fs::write(&config, &edited)?;
    root.dpkg(&["--install", deb])?;
    ensure!(
        fs::read_to_string(&config)? == edited,
        "the upgrade overwrote {CONFIG}"
    );
    ensure!(
        fs::symlink_metadata(root.path(WANTS)).is_ok(),
        "the upgrade disabled ipmpd"
    );

    // Removal takes the programs and leaves the operator's file.
    root.dpkg(&["--remove", "ipmp"])?;
    for gone in [
        "/usr/sbin/ipmpd",
        "/usr/sbin/ipmpstat",
        "/usr/lib/systemd/system/ipmpd.service",
    ] {
        ensure!(
            fs::symlink_metadata(root.path(gone)).is_err(),
            "{gone} survived removal"
        );
    }
    ensure!(
        fs::read_to_string(&config)? == edited,
        "removal lost {CONFIG}"
    );

    // Purge takes the file and the unit's enablement too.
    root.dpkg(&["--purge", "ipmp"])?;
    for gone in [CONFIG, WANTS] {
        ensure!(
            fs::symlink_metadata(root.path(gone)).is_err(),
            "{gone} survived purge"
        );
    }
    Ok(())
}

#[test]
fn the_systemd_unit_checks_first_reloads_with_hup_and_is_hardened() -> Result<()> {
    let unit = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/ipmpd.service"),
    )?;
    for line in [
        "ExecStartPre=/usr/sbin/ipmpd --check --config /etc/ipmp/ipmp.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillMode=mixed",
        "CAP_NET_RAW",
        "CAP_BPF",
        "LimitNOFILE=",
        "ProtectKernelTunables=no",
        "RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6 AF_PACKET",
        "SystemCallArchitectures=native",
    ] {
        ensure!(unit.contains(line), "unit lacks {line}");
    }
    Ok(())
}
