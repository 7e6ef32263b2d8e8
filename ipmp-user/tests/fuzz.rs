//! Property-based fuzzing of the two parsers that read what others wrote:
//! the configuration file and the control socket's request line. Bounded:
//! `IPMP_FUZZ_CASES` cases per property (default 2000, a few seconds).
use std::path::Path;

use ipmp::{
    config::{Config, MAX_CONFIG_BYTES},
    control::{decode_request, Request},
};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("IPMP_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000)
}

/// Pieces of real configurations, so that generated files get past the
/// TOML syntax into the checks.
fn config_line() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "failure_detection_time_ms",
        "failback",
        "startup_quiet_ms",
        "peer_notifications",
        "control_socket",
        "metrics_listen",
        "pin_dir",
        "xdp_mode",
        "name",
        "data_addresses",
        "targets",
        "answer_echo",
        "interface",
        "test_address",
        "standby",
        "test_address_outside_data_subnets",
        "unknown",
    ]);
    let value = prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        prop::sample::select(vec![
            "\"192.0.2.200/24\"",
            "\"2001:db8::200/64\"",
            "\"0.0.0.0/0\"",
            "\"::ffff:192.0.2.1/120\"",
            "\"lo\"",
            "\"eth0\"",
            "\"production0\"",
            "[\"192.0.2.1\", \"224.0.0.1\"]",
            "[\"192.0.2.200/24\", \"192.0.2.200/24\"]",
            "[]",
            "\"auto\"",
            "\"/run/x.sock\"",
            "\"127.0.0.1:9477\"",
            "{ a = 1 }",
            "\"\\u001b[2J\"",
        ])
        .prop_map(str::to_owned),
        "\"[^\"\\\\]{0,20}\"",
    ];
    let header = prop::sample::select(vec!["[daemon]", "[[group]]", "[[group.member]]", "[group]"]);
    prop_oneof![
        (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        header.prop_map(str::to_owned),
    ]
}

/// What every answer of the parser must satisfy, valid or not.
fn check_parse(text: &str) -> Result<(), TestCaseError> {
    match Config::parse(text, Path::new("/etc/ipmp/ipmp.toml")) {
        Ok(config) => {
            for g in &config.groups {
                prop_assert!(!g.members.is_empty() && !g.data_addresses.is_empty());
                prop_assert!(g.data_addresses.len() <= ipmp_common::MAX_DATA_ADDRESSES as usize);
                prop_assert!(g.members.len() <= ipmp_common::MAX_MEMBERS as usize);
                prop_assert!(g.name != "lo" && g.members.iter().all(|m| m.interface != "lo"));
                for a in &g.data_addresses {
                    prop_assert!(!a.addr().is_unspecified() && !a.addr().is_multicast());
                    prop_assert!(!a.addr().is_loopback());
                }
                prop_assert!(g.fdt_ms(&config.daemon) <= 3_600_000);
            }
            prop_assert!(config.daemon.startup_quiet_ms <= 3_600_000);
        }
        Err(e) => {
            prop_assert!(!e.problems.is_empty());
            let lines = text.lines().count() + 1;
            for p in &e.problems {
                prop_assert!(
                    p.line.is_none_or(|l| l >= 1 && l <= lines),
                    "line {:?}",
                    p.line
                );
            }
            let shown = e.to_string();
            prop_assert!(
                !shown.chars().any(|c| c.is_control() && c != '\n'),
                "raw control character in {shown:?}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn config_parser_survives_any_text(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_parse(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn config_parser_survives_config_like_files(lines in prop::collection::vec(config_line(), 0..24)) {
        check_parse(&lines.join("\n"))?;
    }

    #[test]
    fn request_decoder_survives_any_line(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(request) = decode_request(&bytes) {
            // Whatever it accepts means the same once written back.
            let again = serde_json::to_vec(&request).unwrap();
            prop_assert_eq!(decode_request(&again), Ok(request));
        }
    }

    #[test]
    fn request_decoder_reads_back_every_request(
        kind in 0..7usize,
        interface in "\\PC{0,40}",
        trailing in "[ \t\r]{0,3}",
    ) {
        let request = match kind {
            0 => Request::Status,
            1 => Request::Probes,
            2 => Request::Events,
            3 => Request::Offline { interface },
            4 => Request::Online { interface },
            5 => Request::Reload,
            _ => Request::Teardown,
        };
        let mut line = serde_json::to_vec(&request).unwrap();
        line.extend_from_slice(trailing.as_bytes());
        line.push(b'\n');
        prop_assert_eq!(decode_request(&line), Ok(request));
    }
}

/// The largest file `Config::load` reads is parsed as a whole (a bound the
/// fuzzing above stays far below).
#[test]
fn a_file_at_the_size_limit_is_read() {
    let path = std::env::temp_dir().join(format!("ipmp-fuzz-limit-{}.toml", std::process::id()));
    std::fs::write(&path, vec![b'#'; MAX_CONFIG_BYTES as usize]).unwrap();
    let loaded = Config::load(&path);
    std::fs::remove_file(&path).unwrap();
    assert!(loaded.unwrap().groups.is_empty());
}
