//! What the tests of the converter share: Solaris files written inline,
//! and what to expect of their conversion.
pub(super) use std::path::Path;

pub(super) use super::{convert, SolarisFiles};
pub(super) use crate::config::Config;
use crate::config::{GroupConfig, MemberConfig};

pub(super) const CONFIG_PATH: &str = "/etc/ipmp/ipmp.toml";

pub(super) fn member(interface: &str, test: Option<&str>, standby: bool) -> MemberConfig {
    MemberConfig {
        interface: interface.into(),
        test_address: test.map(|t| t.parse().unwrap()),
        standby,
    }
}

fn group(name: &str, data: &[&str], members: Vec<MemberConfig>) -> GroupConfig {
    GroupConfig {
        name: name.into(),
        data_addresses: data.iter().map(|a| a.parse().unwrap()).collect(),
        targets: Vec::new(),
        failure_detection_time_ms: None,
        answer_echo: true,
        members,
    }
}

pub(super) fn has_note(notes: &[String], text: &str) {
    assert!(
        notes.iter().any(|n| n.contains(text)),
        "no note contains {text:?}: {notes:#?}"
    );
}

pub(super) fn files(hostname: &[(&str, &str)], hosts: Option<&str>) -> SolarisFiles {
    SolarisFiles {
        hostname_files: hostname
            .iter()
            .map(|(i, t)| ((*i).to_owned(), (*t).to_owned()))
            .collect(),
        hosts: hosts.map(str::to_owned),
        ..SolarisFiles::default()
    }
}

pub(super) fn errors(files: &SolarisFiles) -> Vec<String> {
    let err = convert(files).expect_err("the conversion should be refused");
    err.to_string().lines().map(str::to_owned).collect()
}

pub(super) fn config_of(files: &SolarisFiles) -> (Config, Vec<String>) {
    let converted = convert(files).unwrap_or_else(|e| panic!("{e}"));
    let config = Config::parse(&converted.toml, Path::new(CONFIG_PATH))
        .unwrap_or_else(|e| panic!("{e}\n{}", converted.toml));
    (config, converted.notes)
}

pub(super) const HOSTS: &str = "127.0.0.1 localhost\n192.0.2.200 prod\n192.0.2.201 prod-eth0\n";

/// Asserts that `config` is the one group given, its members written as
/// (interface, test address, standby).
pub(super) fn assert_one_group(
    config: &Config,
    name: &str,
    data: &[&str],
    members: &[(&str, Option<&str>, bool)],
) {
    let members = members.iter().map(|&(i, t, s)| member(i, t, s)).collect();
    assert_eq!(config.groups, [group(name, data, members)]);
}
