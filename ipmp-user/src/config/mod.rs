//! ipmpd's configuration file (README, "Using it"): TOML, read whole,
//! checked whole.
//!
//! Every problem is reported as `FILE:LINE: problem`, and all the problems
//! of a file that parses are reported together, so one `ipmpd --check` run
//! shows everything to fix. The file is first read into `Raw*` shapes that
//! keep where each checked value stood, then checked and turned into the
//! plain [`Config`] the daemon uses (`check`).
use std::fmt;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net};
use serde::Deserialize;

mod check;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/ipmp/ipmp.toml";

/// ipmpd's lowest failure detection time. in.mpathd raises anything below
/// 100 ms to 100 (MIN_FAILURE_DETECTION_TIME in illumos' mpd_defs.h);
/// ipmpd accepts down to this.
pub(crate) const MIN_FDT_MS: u64 = 10;
/// The longest failure detection time and start-up quiet period: beyond
/// an hour a member's failure would go unnoticed for good, and timers
/// that far out overflow.
const MAX_DURATION_MS: u64 = 3_600_000;
/// The largest configuration file read: real ones are a few KiB.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// Interface names that can never be members or groups: the loopback.
const LOOPBACK: &str = "lo";
const MAX_PEER_NOTIFICATIONS: u32 = 100;
/// Linux interface names are at most IFNAMSIZ - 1 bytes.
pub(crate) const MAX_IFNAME_LEN: usize = 15;
/// The group interface is one end of a veth pair; the other end is named
/// after it with this suffix, and both names must be valid.
pub(crate) const PEER_SUFFIX: &str = "_p";
pub(crate) const MAX_GROUP_NAME_LEN: usize = MAX_IFNAME_LEN - PEER_SUFFIX.len();

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub groups: Vec<GroupConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonConfig {
    /// in.mpathd's FAILURE_DETECTION_TIME.
    pub failure_detection_time_ms: u64,
    /// in.mpathd's FAILBACK: a repaired member becomes active again.
    pub failback: bool,
    /// Losses are not counted for this long after a member starts probing.
    pub startup_quiet_ms: u64,
    /// Gratuitous ARPs / unsolicited neighbour advertisements sent when a
    /// data address moves.
    pub peer_notifications: u32,
    pub control_socket: PathBuf,
    /// Where `/metrics` is served; `None` serves no metrics.
    pub metrics_listen: Option<SocketAddr>,
    /// Where the BPF objects are pinned (a per-netns folder is added).
    pub pin_dir: PathBuf,
    pub xdp_mode: XdpMode,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            failure_detection_time_ms: 10_000,
            failback: true,
            startup_quiet_ms: 40_000,
            peer_notifications: 2,
            control_socket: PathBuf::from("/run/ipmp/ipmpd.sock"),
            metrics_listen: None,
            pin_dir: PathBuf::from("/sys/fs/bpf/ipmp"),
            xdp_mode: XdpMode::Auto,
        }
    }
}

/// How the XDP program is attached to the members.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// Native where the driver has it, generic otherwise.
    #[default]
    Auto,
    Native,
    Generic,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// The group's name, also the group interface's name.
    pub name: String,
    /// Addresses with their prefix length, e.g. 192.0.2.200/24.
    pub data_addresses: Vec<IpNet>,
    /// Explicit probe targets; without them targets are found (routers).
    pub targets: Vec<IpAddr>,
    /// Overrides the daemon's failure detection time for this group.
    pub failure_detection_time_ms: Option<u64>,
    /// Whether XDP answers ICMP echo requests to the data addresses.
    pub answer_echo: bool,
    pub members: Vec<MemberConfig>,
}

impl GroupConfig {
    /// The failure detection time in force for this group.
    pub fn fdt_ms(&self, daemon: &DaemonConfig) -> u64 {
        self.failure_detection_time_ms
            .unwrap_or(daemon.failure_detection_time_ms)
    }

    /// The name of the veth peer of the group interface.
    pub fn peer_interface(&self) -> String {
        peer_interface(&self.name)
    }
}

fn peer_interface(group: &str) -> String {
    format!("{group}{PEER_SUFFIX}")
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberConfig {
    pub interface: String,
    /// Enables IPv4 probe-based failure detection on this member.
    pub test_address: Option<Ipv4Net>,
    pub standby: bool,
}

/// Why a configuration file was refused: every problem found, in line order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    pub problems: Vec<ConfigProblem>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// 1-based; `None` when the file could not be read at all.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            let path = printable(&self.path.display().to_string());
            let message = printable(&problem.message);
            match problem.line {
                Some(line) => write!(f, "{path}:{line}: {message}")?,
                None => write!(f, "{path}: {message}")?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and checks the file at `path`: a regular file of at most
    /// [`MAX_CONFIG_BYTES`] (a device or FIFO would be read forever).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let refuse = |message: String| ConfigError {
            path: path.to_owned(),
            problems: vec![ConfigProblem {
                line: None,
                message,
            }],
        };
        let unreadable = |e: std::io::Error| refuse(format!("cannot read the configuration: {e}"));
        // Non-blocking, so a FIFO does not hold the open until a writer comes.
        let file = std::os::unix::fs::OpenOptionsExt::custom_flags(
            fs::OpenOptions::new().read(true),
            libc::O_NONBLOCK,
        )
        .open(path)
        .map_err(unreadable)?;
        let meta = file.metadata().map_err(unreadable)?;
        if !meta.is_file() {
            return Err(refuse(
                "is not a regular file; give the path of a TOML file".into(),
            ));
        }
        let mut bytes = Vec::new();
        // Read one byte more than allowed: a file that grows is caught too.
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, MAX_CONFIG_BYTES + 1),
            &mut bytes,
        )
        .map_err(unreadable)?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(refuse(format!(
                "is larger than {} KiB; a configuration is a few KiB of TOML",
                MAX_CONFIG_BYTES / 1024
            )));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            refuse(format!(
                "is not UTF-8 text (byte {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        Config::parse(&text, path)
    }

    /// Parses `text`; `path` only names the file in the messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: check::RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            path: path.to_owned(),
            problems: vec![ConfigProblem {
                line: e.span().map(|span| line_of(text, span.start)),
                message: e.message().trim_end().to_owned(),
            }],
        })?;
        check::check(text, raw).map_err(|problems| ConfigError {
            path: path.to_owned(),
            problems,
        })
    }
}

/// `text` with its control characters escaped (newlines kept), so that a
/// message quoting a hostile file or request cannot drive the terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' => c.to_string(),
            c if c.is_control() => c.escape_default().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of the file, at its default where it has one.
    const FULL_EXAMPLE: &str = r#"[daemon]
failure_detection_time_ms = 10000   # FAILURE_DETECTION_TIME; min 10
failback = true                      # FAILBACK
startup_quiet_ms = 40000
peer_notifications = 2
control_socket = "/run/ipmp/ipmpd.sock"
metrics_listen = "127.0.0.1:9477"    # omit to disable
pin_dir = "/sys/fs/bpf/ipmp"         # a per-netns subfolder is added
xdp_mode = "auto"                    # auto | native | generic

[[group]]
name = "production0"                 # the group interface's name
data_addresses = ["192.0.2.200/24", "2001:db8::200/64"]
targets = ["192.0.2.1"]              # optional explicit probe targets
failure_detection_time_ms = 2000     # optional, overrides the daemon's
answer_echo = true                   # XDP echo answering

[[group.member]]
interface = "e1000g0"
test_address = "192.0.2.201/24"      # optional: enables IPv4 probing
standby = false
"#;

    pub(super) const FILE: &str = "/etc/ipmp/ipmp.toml";

    pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new(FILE))
    }

    /// The error's lines, as `ipmpd --check` prints them.
    pub(super) fn errors(text: &str) -> Vec<String> {
        let err = parse(text).expect_err("the configuration should be refused");
        err.to_string().lines().map(str::to_owned).collect()
    }

    /// One group named `name` with one member, for the checks to break.
    pub(super) fn group(name: &str, member: &str, data: &str, test: &str) -> String {
        format!(
            "[[group]]\nname = \"{name}\"\ndata_addresses = [\"{data}\"]\n\
             [[group.member]]\ninterface = \"{member}\"\ntest_address = \"{test}\"\n"
        )
    }

    #[test]
    fn full_example_parses() {
        let config = parse(FULL_EXAMPLE).unwrap();
        let expected = Config {
            daemon: DaemonConfig {
                failure_detection_time_ms: 10_000,
                failback: true,
                startup_quiet_ms: 40_000,
                peer_notifications: 2,
                control_socket: PathBuf::from("/run/ipmp/ipmpd.sock"),
                metrics_listen: Some("127.0.0.1:9477".parse().unwrap()),
                pin_dir: PathBuf::from("/sys/fs/bpf/ipmp"),
                xdp_mode: XdpMode::Auto,
            },
            groups: vec![GroupConfig {
                name: "production0".into(),
                data_addresses: vec![
                    "192.0.2.200/24".parse().unwrap(),
                    "2001:db8::200/64".parse().unwrap(),
                ],
                targets: vec!["192.0.2.1".parse().unwrap()],
                failure_detection_time_ms: Some(2000),
                answer_echo: true,
                members: vec![MemberConfig {
                    interface: "e1000g0".into(),
                    test_address: Some("192.0.2.201/24".parse().unwrap()),
                    standby: false,
                }],
            }],
        };
        assert_eq!(config, expected);
        assert_eq!(config.groups[0].fdt_ms(&config.daemon), 2000);
        assert_eq!(config.groups[0].peer_interface(), "production0_p");
    }

    /// The sample beside the tests: the tutorial's host, probe-based.
    const TUTORIAL: &str = include_str!("../../tests/data/tutorial.toml");

    #[test]
    fn tutorial_sample_parses() {
        let config = parse(TUTORIAL).unwrap();
        let group = &config.groups[0];
        assert_eq!(group.name, "production0");
        let names: Vec<_> = group.members.iter().map(|m| m.interface.as_str()).collect();
        assert_eq!(names, ["e1000g0", "e1000g1", "rge0"]);
        assert!(group.members.iter().all(|m| m.test_address.is_some()));
    }

    #[test]
    fn load_reads_the_file() {
        let path =
            std::env::temp_dir().join(format!("ipmp-config-test-{}.toml", std::process::id()));
        fs::write(&path, TUTORIAL).unwrap();
        let loaded = Config::load(&path);
        fs::remove_file(&path).unwrap();
        assert_eq!(loaded.unwrap(), parse(TUTORIAL).unwrap());
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config.daemon, DaemonConfig::default());
        assert_eq!(config.daemon.metrics_listen, None);
        assert_eq!(config.daemon.xdp_mode, XdpMode::Auto);
        assert!(config.groups.is_empty());
    }

    #[test]
    fn group_without_daemon_table_takes_defaults() {
        let text = "[[group]]\nname = \"g0\"\ndata_addresses = [\"192.0.2.200/24\"]\n\
                    [[group.member]]\ninterface = \"eth0\"\n";
        let config = parse(text).unwrap();
        assert_eq!(config.daemon, DaemonConfig::default());
        let group = &config.groups[0];
        assert_eq!(group.fdt_ms(&config.daemon), 10_000);
        assert!(group.answer_echo);
        assert!(group.targets.is_empty());
        assert_eq!(
            group.members,
            [MemberConfig {
                interface: "eth0".into(),
                test_address: None,
                standby: false
            }]
        );
    }

    #[test]
    fn xdp_modes() {
        for (word, mode) in [
            ("auto", XdpMode::Auto),
            ("native", XdpMode::Native),
            ("generic", XdpMode::Generic),
        ] {
            let config = parse(&format!("[daemon]\nxdp_mode = \"{word}\"\n")).unwrap();
            assert_eq!(config.daemon.xdp_mode, mode);
        }
        let errors = errors("[daemon]\n\nxdp_mode = \"skb\"\n");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with(&format!("{FILE}:3: unknown variant `skb`")),
            "{errors:?}"
        );
    }

    #[test]
    fn unknown_key_in_daemon() {
        let errors = errors("[daemon]\nfailback = true\nfailbak = false\n");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with(&format!(
                "{FILE}:3: unknown field `failbak`, expected one of"
            )),
            "{errors:?}"
        );
        assert!(errors[0].contains("`failback`"), "{errors:?}");
    }

    #[test]
    fn unknown_key_in_member() {
        let text = format!(
            "{}standbye = true\n",
            group("g0", "eth0", "192.0.2.200/24", "192.0.2.201/24")
        );
        let errors = errors(&text);
        assert!(
            errors[0].starts_with(&format!("{FILE}:7: unknown field `standbye`")),
            "{errors:?}"
        );
    }

    #[test]
    fn unknown_table() {
        let errors = errors("[deamon]\nfailback = true\n");
        assert!(
            errors[0].starts_with(&format!("{FILE}:1: unknown field `deamon`")),
            "{errors:?}"
        );
    }

    #[test]
    fn syntax_error_names_its_line() {
        let errors = errors("[daemon]\nfailback = true\npin_dir = /sys/fs/bpf\n");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with(&format!("{FILE}:3: ")), "{errors:?}");
    }

    #[test]
    fn wrong_type_names_its_line() {
        let errors = errors("[daemon]\n\nfailure_detection_time_ms = \"10s\"\n");
        assert!(
            errors[0].starts_with(&format!("{FILE}:3: invalid type: string")),
            "{errors:?}"
        );
    }

    #[test]
    fn missing_group_name() {
        let errors = errors("[[group]]\ndata_addresses = [\"192.0.2.200/24\"]\n");
        assert!(
            errors[0].starts_with(&format!("{FILE}:1: missing field `name`")),
            "{errors:?}"
        );
    }

    #[test]
    fn messages_escape_control_bytes() {
        let err = parse(
            "[[group]]\nname = \"g\\u001b[2J\"\ndata_addresses = [\"192.0.2.200/24\"]\n\
                         [[group.member]]\ninterface = \"eth0\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains('\u{1b}'), "{err:?}");
        assert!(err.contains("\\u{1b}[2J"), "{err:?}");
    }

    #[test]
    fn only_regular_files_of_at_most_a_mebibyte_are_read() {
        let err = Config::load(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "/dev/zero: is not a regular file; give the path of a TOML file"
        );
        let path =
            std::env::temp_dir().join(format!("ipmp-config-big-{}.toml", std::process::id()));
        fs::write(&path, vec![b'#'; MAX_CONFIG_BYTES as usize + 1]).unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        fs::remove_file(&path).unwrap();
        assert!(
            err.ends_with("is larger than 1024 KiB; a configuration is a few KiB of TOML"),
            "{err}"
        );
    }

    #[test]
    fn unreadable_file() {
        let err = Config::load(Path::new("/nonexistent/ipmp.toml")).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert_eq!(err.problems[0].line, None);
        assert!(
            err.to_string()
                .starts_with("/nonexistent/ipmp.toml: cannot read the configuration: "),
            "{err}"
        );
    }
}
