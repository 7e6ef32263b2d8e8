//! What fleets drop in: the Prometheus alerting rules (packaging/prometheus)
//! and the Grafana dashboard (packaging/grafana). promtool checks and
//! unit-tests the rules, parses every PromQL expression of the dashboard,
//! and both may only name metrics ipmpd's own encoder exports.
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, ensure, Context, Result};
use ipmp::{
    metrics::{encode, GroupReading, GroupSource, MemberSource},
    model::{GroupStatus, MemberFlags},
};
use ipmp_common::{MemberCounters, DROP_REASONS};
use serde_json::{json, Value};

/// The Grafana dashboard JSON model version the file is written for
/// (Grafana 10.4 / 11).
const SCHEMA_VERSION: u64 = 39;

fn packaging(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../packaging")
        .join(file)
}

fn read(file: &str) -> Result<String> {
    let path = packaging(file);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// Runs promtool; its output is the error when it fails.
fn promtool(args: &[&str]) -> Result<()> {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .context("running promtool (Debian package prometheus; cargo xtask setup installs it)")?;
    ensure!(
        out.status.success(),
        "promtool {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Every series name ipmpd exports: the families its encoder writes for a
/// group that probes (so the FDT gauge is there too), with a histogram's
/// `_bucket`, `_sum` and `_count` series.
fn exported() -> Result<BTreeSet<String>> {
    let status: GroupStatus = serde_json::from_value(json!({
        "name": "production0",
        "state": "ok",
        "fdt_ms": 10000,
        "members": [{
            "name": "e1000g0",
            "active": true,
            "flags": serde_json::to_value(MemberFlags::default())?,
            "link": "up",
            "probe": "ok",
            "state": "ok",
        }],
    }))?;
    let source = GroupSource {
        status,
        pin_dir: PathBuf::new(),
        members: vec![MemberSource::default()],
    };
    let text = encode(&[GroupReading {
        source: &source,
        counters: vec![MemberCounters::default()],
        drops: [0; DROP_REASONS as usize],
    }])?;
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                bail!("bad TYPE line {line:?}");
            };
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            names.insert(name.to_string());
        }
    }
    ensure!(names.len() > 20, "the encoder exported only {names:?}");
    Ok(names)
}

/// The `ipmp_*` metric names a text mentions.
fn ipmp_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("ipmp_") {
        // A name starts here only if no identifier character precedes it.
        let starts = !rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        if starts {
            names.insert(tail[..len].to_string());
        }
        rest = &tail[len..];
    }
    names
}

fn only_exported(file: &str, text: &str) -> Result<()> {
    let exported = exported()?;
    let used = ipmp_names(text);
    ensure!(!used.is_empty(), "{file} names no ipmp metric");
    let unknown: Vec<_> = used.difference(&exported).collect();
    ensure!(
        unknown.is_empty(),
        "{file} uses metrics ipmpd does not export: {unknown:?} (exported: {exported:?})"
    );
    Ok(())
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() -> Result<()> {
    let rules = packaging("prometheus/ipmp-rules.yml");
    promtool(&["check", "rules", rules.to_str().context("path")?])?;
    let tests = packaging("prometheus/ipmp-rules.test.yml");
    promtool(&["test", "rules", tests.to_str().context("path")?])
}

/// promtool passes a test file that leaves an alert out: so the test file
/// is held to cover every alert, firing and silent.
#[test]
fn every_alert_has_runbook_text_and_a_firing_and_a_silent_test() -> Result<()> {
    let rules = read("prometheus/ipmp-rules.yml")?;
    let tests = read("prometheus/ipmp-rules.test.yml")?;
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    ensure!(alerts.len() >= 8, "only {alerts:?}");
    ensure!(
        rules.matches("runbook: ").count() == alerts.len(),
        "every alert needs a runbook annotation"
    );
    // (alert, fires) for each alert_rule_test case.
    let mut cases = BTreeSet::new();
    let mut current = None;
    for line in tests.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("alertname: ") {
            current = Some(name);
        } else if let Some(expected) = line.strip_prefix("exp_alerts:") {
            let name = current.context("exp_alerts before alertname")?;
            cases.insert((name, expected.trim() != "[]"));
        }
    }
    for alert in &alerts {
        for fires in [true, false] {
            ensure!(
                cases.contains(&(*alert, fires)),
                "ipmp-rules.test.yml has no case where {alert} {}",
                if fires { "fires" } else { "stays silent" }
            );
        }
    }
    only_exported("ipmp-rules.yml", &rules)
}

/// Every `expr` of the dashboard's panels.
fn expressions(dashboard: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dashboard];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(expr)) = map.get("expr") {
                    out.push(expr.clone());
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    out
}

/// Grafana's variables replaced by values PromQL accepts: intervals by a
/// duration, the dashboard's own variables (inside label matchers) by a
/// word.
fn substitute(expr: &str) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 1..];
        let (name, after) = match tail.strip_prefix('{') {
            Some(braced) => {
                let end = braced.find('}').unwrap_or(braced.len());
                (&braced[..end], &braced[(end + 1).min(braced.len())..])
            }
            None => {
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                (&tail[..end], &tail[end..])
            }
        };
        out.push_str(if name.starts_with("__") { "5m" } else { "x" });
        rest = after;
    }
    out.push_str(rest);
    out
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn dashboard_expressions_parse_and_use_only_exported_metrics() -> Result<()> {
    let text = read("grafana/ipmp-dashboard.json")?;
    let dashboard: Value = serde_json::from_str(&text).context("ipmp-dashboard.json")?;
    ensure!(
        dashboard["schemaVersion"] == SCHEMA_VERSION,
        "schemaVersion is {}, not {SCHEMA_VERSION}",
        dashboard["schemaVersion"]
    );
    let exprs = expressions(&dashboard);
    ensure!(exprs.len() >= 10, "only {} expressions", exprs.len());
    // One recording rule per expression: promtool parses each.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in exprs.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard:expr_{i}\n        expr: {}\n",
            serde_json::to_string(&substitute(expr))?
        ));
    }
    let dir = TempDir(std::env::temp_dir().join(format!("ipmp-dashboard-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0)?;
    let file = dir.0.join("dashboard-rules.yml");
    std::fs::write(&file, rules)?;
    promtool(&["check", "rules", file.to_str().context("path")?])?;
    only_exported("ipmp-dashboard.json", &text)
}

#[test]
fn the_name_scan_and_the_substitution_do_what_the_tests_rely_on() {
    assert_eq!(
        ipmp_names("rate(ipmp_probes_sent_total{x=\"ipmp_no\"}[5m]) + my_ipmp_other"),
        BTreeSet::from(["ipmp_probes_sent_total".to_string(), "ipmp_no".to_string()])
    );
    assert_eq!(
        substitute("rate(a{g=\"$group\",i=~\"${instance}\"}[$__rate_interval])"),
        "rate(a{g=\"x\",i=~\"x\"}[5m])"
    );
}
