//! `ipmpctl convert` (README, "Using it"): a Solaris IPMP configuration
//! turned into ipmpd's TOML.
//!
//! The input is what a Solaris host boots from: the `/etc/hostname.IF`
//! files, read the way the boot scripts and ifconfig(1M) read them,
//! `/etc/hosts` for the host names they use, and `/etc/default/mpathd`.
//! Both IPMP styles are understood:
//! - new IPMP: an IPMP interface (`ipmp` keyword) holds the data addresses
//!   and becomes the group (named after the interface); the underlying
//!   interfaces name its group with `group G`;
//! - classic IPMP: no IPMP interface; the members' addresses that fail over
//!   (no `-failover`) are the data addresses, and the group takes the
//!   Solaris group name.
//!
//! On both, a member's `-failover` address is its test address and
//! `standby` makes it a standby member. Every token is accounted for:
//! converted, noted as harmless, or refused with the reason and the fix.
//! The module does no I/O: the caller reads the files, prints the notes and
//! writes the TOML, which [`Config::parse`] accepts (checked before it is
//! returned).
//!
//! One file per concern, in the order a conversion runs:
//! - `hosts`: `/etc/hosts`, for the host names the hostname files use;
//! - `hostname`: the `hostname.IF` files, split into ifconfig commands,
//!   into the interfaces they configure;
//! - `ifconfig`: the ifconfig(1M) keywords and one command's effect on an
//!   interface;
//! - `mpathd`: `/etc/default/mpathd`;
//! - `gather`: the interfaces gathered into groups, with their data and
//!   test addresses;
//! - `hostname6`: the IPv6 data addresses of `hostname6.IF` files, added to
//!   those groups;
//! - `render`: the TOML.
use std::fmt;
use std::path::Path;

use crate::config::Config;

mod gather;
mod hostname;
mod hostname6;
mod hosts;
mod ifconfig;
mod mpathd;
mod render;
#[cfg(test)]
mod testing;

use gather::build_groups;
use hostname::read_hostname_files;
use hostname6::read_hostname6_files;
use hosts::Hosts;
use mpathd::read_mpathd;
use render::render;

/// The names the messages and comments give the files (the caller may have
/// read them from anywhere).
const HOSTS_FILE: &str = "/etc/hosts";
const MPATHD_FILE: &str = "/etc/default/mpathd";

/// The Solaris files to convert, as the caller read them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SolarisFiles {
    /// `(IF, contents)` for each `/etc/hostname.IF`, IF taken from the file
    /// name; it may name a logical interface (`hme0:1`).
    pub hostname_files: Vec<(String, String)>,
    /// `(IF, contents)` for each `/etc/hostname6.IF` (IPv6).
    pub hostname6_files: Vec<(String, String)>,
    /// `/etc/hosts`, for the host names the hostname files use.
    pub hosts: Option<String>,
    /// `/etc/default/mpathd`.
    pub mpathd: Option<String>,
}

/// A successful conversion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Converted {
    /// ipmpd's configuration file, with comments saying where each part
    /// came from.
    pub toml: String,
    /// What was ignored or interpreted, one message each, for stderr.
    pub notes: Vec<String>,
}

/// Why the files could not be converted: every problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvertError {
    pub problems: Vec<ConvertProblem>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvertProblem {
    /// `hostname.IF`, `/etc/hosts`, `/etc/default/mpathd`, or the converted
    /// configuration.
    pub file: String,
    /// 1-based.
    pub line: Option<usize>,
    /// The token (with its argument) the problem is about.
    pub token: Option<String>,
    pub why: String,
    /// What to do about it.
    pub fix: String,
}

impl fmt::Display for ConvertProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: ", self.file)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if let Some(token) = &self.token {
            write!(f, "`{token}`: ")?;
        }
        write!(f, "{}; {}", self.why, self.fix)
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConvertError {}

/// Converts a Solaris IPMP configuration; see the module documentation.
pub fn convert(files: &SolarisFiles) -> Result<Converted, ConvertError> {
    let mut out = Output::default();
    let hosts = Hosts::parse(files.hosts.as_deref(), &mut out.notes);
    let interfaces = read_hostname_files(&files.hostname_files, &hosts, &mut out);
    let daemon = files
        .mpathd
        .as_deref()
        .map(|text| read_mpathd(text, &mut out));
    let mut groups = build_groups(interfaces, &mut out);
    read_hostname6_files(&files.hostname6_files, &mut groups, &mut out);
    if !out.problems.is_empty() {
        return Err(ConvertError {
            problems: out.problems,
        });
    }
    let toml = render(daemon.as_ref(), &groups);
    // The contract: what is printed is what `ipmpd --check` accepts.
    if let Err(err) = Config::parse(&toml, Path::new("converted")) {
        let problems = err
            .problems
            .into_iter()
            .map(|p| ConvertProblem {
                file: "the converted configuration".into(),
                line: p.line,
                token: None,
                why: p.message,
                fix: "correct the Solaris files, or write this part of the TOML by hand".into(),
            })
            .collect();
        return Err(ConvertError { problems });
    }
    Ok(Converted {
        toml,
        notes: out.notes,
    })
}

/// What the conversion found besides the configuration.
#[derive(Default)]
struct Output {
    problems: Vec<ConvertProblem>,
    notes: Vec<String>,
}

/// Where something was written, for comments and notes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Loc {
    file: String,
    line: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}", self.file, self.line)
    }
}

fn problem(loc: &Loc, token: Option<String>, why: String, fix: String) -> ConvertProblem {
    ConvertProblem {
        file: loc.file.clone(),
        line: Some(loc.line),
        token,
        why,
        fix,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::testing::*;

    fn data_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/solaris")
    }

    /// The Solaris files of a case folder, hostname files in name order
    /// (as a shell glob gives them).
    fn case_files(case: &str) -> SolarisFiles {
        let dir = data_dir().join(case);
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let read = |name: &str| fs::read_to_string(dir.join(name)).ok();
        SolarisFiles {
            hostname_files: names
                .iter()
                .filter_map(|n| Some((n.strip_prefix("hostname.")?.to_owned(), read(n)?)))
                .collect(),
            hostname6_files: names
                .iter()
                .filter_map(|n| Some((n.strip_prefix("hostname6.")?.to_owned(), read(n)?)))
                .collect(),
            hosts: read("hosts"),
            mpathd: read("mpathd"),
        }
    }

    fn expected(case: &str) -> String {
        fs::read_to_string(data_dir().join(case).join("expected.toml")).unwrap()
    }

    /// Converts a case, checks the text against expected.toml and returns
    /// what ipmpd makes of it.
    fn convert_case(case: &str) -> (Config, Vec<String>) {
        let converted = convert(&case_files(case)).unwrap_or_else(|e| panic!("{case}:\n{e}"));
        assert_eq!(
            converted.toml,
            expected(case),
            "{case}: the TOML differs from expected.toml"
        );
        let config = Config::parse(&converted.toml, Path::new(CONFIG_PATH))
            .unwrap_or_else(|e| panic!("{case}: ipmpd refuses the TOML:\n{e}"));
        (config, converted.notes)
    }

    #[test]
    fn every_case_folder_converts_to_its_expected_toml() {
        let mut cases: Vec<String> = fs::read_dir(data_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        cases.sort();
        assert!(cases.len() >= 7, "{cases:?}");
        for case in cases {
            convert_case(&case);
        }
    }

    /// Tutorial 1.6.3, link-based: `ipmp group production0 hivemind-prod up`
    /// and `group production0 -failover up` on each underlying interface.
    #[test]
    fn new_ipmp_link_based() {
        let (config, notes) = convert_case("new-link-based");
        assert_eq!(config.daemon, Default::default());
        assert_one_group(
            &config,
            "production0",
            &["192.168.178.200/24"],
            &[
                ("e1000g0", None, false),
                ("e1000g1", None, false),
                ("rge0", None, false),
            ],
        );
        has_note(
            &notes,
            "group production0 has no test address: failure detection is link-based only",
        );
        has_note(
            &notes,
            "192.168.178.200/24 (hivemind-prod, hostname.production0 line 1)",
        );
        has_note(
            &notes,
            "`up` (hostname.e1000g0 line 1, hostname.e1000g1 line 1, \
            hostname.production0 line 1, hostname.rge0 line 1) ignored",
        );
        has_note(&notes, "keep their Solaris names (e1000g0, e1000g1, rge0)");
    }

    /// Tutorial 1.6.3, probe-based: `group production0 -failover
    /// hivemind-prod-e1000g0 up`: the address after -failover is the test
    /// address.
    #[test]
    fn new_ipmp_probe_based() {
        let (config, _) = convert_case("new-probe-based");
        assert_one_group(
            &config,
            "production0",
            &["192.168.178.200/24"],
            &[
                ("e1000g0", Some("192.168.178.201/24"), false),
                ("e1000g1", Some("192.168.178.202/24"), false),
                ("rge0", Some("192.168.178.203/24"), false),
            ],
        );
    }

    /// Seed 003: `unreal-hme0 netmask + broadcast + deprecated -failover
    /// group unrealgrp1 up addif unreal netmask + broadcast + failover up`.
    #[test]
    fn classic_probe_based() {
        let (config, notes) = convert_case("classic-probe-based");
        assert_one_group(
            &config,
            "unrealgrp1",
            &["192.168.11.5/24"],
            &[
                ("hme0", Some("192.168.11.6/24"), false),
                ("hme1", Some("192.168.11.7/24"), false),
            ],
        );
        has_note(
            &notes,
            "group unrealgrp1 is classic IPMP (no IPMP interface)",
        );
        has_note(
            &notes,
            "`broadcast +` (hostname.hme0 line 1, hostname.hme1 line 1) ignored",
        );
    }

    /// Tutorial 1.7.4: the same, with the data address on a continued line.
    #[test]
    fn classic_probe_based_with_continued_line() {
        let (config, _) = convert_case("classic-probe-based-tutorial");
        assert_one_group(
            &config,
            "production0",
            &["192.168.178.200/24"],
            &[
                ("e1000g0", Some("192.168.178.201/24"), false),
                ("e1000g1", Some("192.168.178.202/24"), false),
            ],
        );
    }

    /// Tutorial 1.7.4: the data address on the first interface, the second
    /// only in the group.
    #[test]
    fn classic_link_based() {
        let (config, notes) = convert_case("classic-link-based");
        assert_one_group(
            &config,
            "production0",
            &["192.168.178.200/24"],
            &[("e1000g0", None, false), ("e1000g1", None, false)],
        );
        has_note(&notes, "link-based only");
    }

    #[test]
    fn standby_member() {
        let (config, _) = convert_case("standby");
        let members = &config.groups[0].members;
        assert_eq!(
            *members,
            [
                member("e1000g0", Some("192.168.178.201/24"), false),
                member("e1000g1", Some("192.168.178.202/24"), false),
                member("rge0", Some("192.168.178.203/24"), true),
            ]
        );
    }

    /// The tutorial's FAILURE_DETECTION_TIME=100 and seed 004's FAILBACK=no.
    #[test]
    fn mpathd_settings() {
        let (config, notes) = convert_case("mpathd");
        assert_eq!(config.daemon.failure_detection_time_ms, 100);
        assert!(!config.daemon.failback);
        assert_eq!(config.groups.len(), 1);
        assert_eq!(config.groups[0].members.len(), 3);
        has_note(&notes, "TRACK_INTERFACES_ONLY_WITH_GROUPS=yes ignored");
    }
}
