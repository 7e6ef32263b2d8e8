//! `ipmpctl convert` on the Solaris configurations of the seeds: the TOML it
//! prints is what `ipmpd --check` accepts, and says what the test data
//! expects.
use std::{path::Path, process::Command};

use anyhow::{ensure, Context, Result};
use ipmp_tests::{daemon::bin, netns::unique};

#[test]
fn every_solaris_example_converts_to_a_config_ipmpd_accepts() -> Result<()> {
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ipmp-user/tests/data/solaris");
    let tmp = std::env::temp_dir().join(unique("convert"));
    std::fs::create_dir_all(&tmp)?;
    let mut checked = 0;
    for case in std::fs::read_dir(&cases)? {
        let case = case?.path();
        let mut cmd = Command::new(bin("ipmpctl"));
        cmd.arg("convert");
        for (flag, file) in [("--hosts", "hosts"), ("--mpathd", "mpathd")] {
            if case.join(file).exists() {
                cmd.arg(flag).arg(case.join(file));
            }
        }
        let mut files: Vec<_> = std::fs::read_dir(&case)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("hostname."))
            })
            .collect();
        files.sort();
        let out = cmd.args(&files).output()?;
        ensure!(
            out.status.success(),
            "{}: {}",
            case.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let toml = String::from_utf8(out.stdout)?;
        let expected =
            std::fs::read_to_string(case.join("expected.toml")).context("expected.toml")?;
        ensure!(
            toml == expected,
            "{}: output differs from expected.toml:\n{toml}",
            case.display()
        );
        let config = tmp.join("ipmp.toml");
        std::fs::write(&config, &toml)?;
        let check = Command::new(bin("ipmpd"))
            .arg("--check")
            .arg("--config")
            .arg(&config)
            .output()?;
        ensure!(
            check.status.success(),
            "{}: ipmpd --check refused it: {}",
            case.display(),
            String::from_utf8_lossy(&check.stderr)
        );
        checked += 1;
    }
    std::fs::remove_dir_all(&tmp)?;
    ensure!(checked >= 7, "only {checked} example folders found");
    Ok(())
}
