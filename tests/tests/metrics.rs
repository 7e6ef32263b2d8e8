//! Prometheus metrics read from the BPF maps: valid for promtool, counting
//! what was really sent, following failures, surviving restarts, and
//! scraped by a real Prometheus server.
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context, Result};
use ipmp_tests::{
    config::IpmpToml,
    daemon::Daemon,
    http::{get, sample},
    netns::unique,
    topology::{Topology, DATA_V4, MEMBERS, PEER_V4},
    traffic::flows_by_mac,
};

const METRICS: &str = "127.0.0.1:9477";

fn setup() -> Result<(Topology, Daemon)> {
    let (t, d) = Daemon::start_on_tutorial("mx", &IpmpToml::tutorial().metrics(METRICS).render())?;
    Ok((t, d))
}

fn scrape(t: &Topology) -> Result<String> {
    get(&t.host, METRICS, "/metrics")
}

fn total(text: &str, family: &str) -> f64 {
    MEMBERS
        .iter()
        .filter_map(|m| {
            sample(
                text,
                &format!("{family}{{group=\"production0\",interface=\"{m}\"}}"),
            )
        })
        .sum()
}

#[test]
fn exposition_passes_promtool() -> Result<()> {
    let (t, _d) = setup()?;
    let text = scrape(&t)?;
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running promtool (Debian package prometheus)")?;
    std::io::Write::write_all(
        check.stdin.as_mut().context("promtool stdin")?,
        text.as_bytes(),
    )?;
    let out = check.wait_with_output()?;
    ensure!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for family in [
        "ipmp_group_state",
        "ipmp_interface_state",
        "ipmp_flow_table_buckets",
        "ipmp_dataplane_dropped_packets_total",
    ] {
        ensure!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing"
        );
    }
    Ok(())
}

#[test]
fn transmit_counters_rise_by_what_was_sent() -> Result<()> {
    let (t, _d) = setup()?;
    let before = total(&scrape(&t)?, "ipmp_interface_transmit_packets_total");
    let sent = 300;
    let seen = flows_by_mac(
        &t.host,
        DATA_V4,
        30_000..30_000 + sent,
        &t.peer,
        "eth0",
        PEER_V4,
        9000,
    )?;
    ensure!(
        seen.len() == sent as usize,
        "only {} datagrams arrived",
        seen.len()
    );
    let after = total(&scrape(&t)?, "ipmp_interface_transmit_packets_total");
    ensure!(
        after - before >= sent as f64,
        "transmit packets rose by {} for {sent} sent",
        after - before
    );
    let received = total(&scrape(&t)?, "ipmp_interface_receive_packets_total");
    ensure!(received > 0.0, "no packet counted on receive");
    Ok(())
}

#[test]
fn a_failure_shows_in_state_and_counter_and_survives_a_restart() -> Result<()> {
    let (t, d) = setup()?;
    let failed =
        "ipmp_interface_state{group=\"production0\",interface=\"e1000g0\",state=\"failed\"}";
    let failures = "ipmp_interface_failures_total{group=\"production0\",interface=\"e1000g0\"}";
    let text = scrape(&t)?;
    ensure!(
        sample(&text, failed) == Some(0.0) && sample(&text, failures) == Some(0.0),
        "not ok at start"
    );

    t.pull_cable("e1000g0")?;
    d.wait_member("e1000g0", "state", "failed")?;
    let text = scrape(&t)?;
    ensure!(
        sample(&text, failed) == Some(1.0),
        "state failed not 1:\n{text}"
    );
    ensure!(
        sample(&text, failures) == Some(1.0),
        "failures not counted:\n{text}"
    );
    ensure!(
        sample(
            &text,
            "ipmp_group_state{group=\"production0\",state=\"degraded\"}"
        ) == Some(1.0),
        "group not degraded"
    );
    ensure!(
        sample(
            &text,
            "ipmp_flow_table_buckets{group=\"production0\",interface=\"e1000g0\"}"
        ) == Some(0.0),
        "failed member still owns buckets"
    );
    let tx_before = total(&text, "ipmp_interface_transmit_packets_total");

    // Counters never go backwards across a restart that adopts the pins.
    let d = Daemon::start_again(d, &t.host)?;
    d.wait_member("e1000g0", "state", "failed")?;
    let text = scrape(&t)?;
    ensure!(
        sample(&text, failures) == Some(1.0),
        "failures reset by the restart:\n{text}"
    );
    ensure!(
        total(&text, "ipmp_interface_transmit_packets_total") >= tx_before,
        "transmit counters went backwards"
    );
    Ok(())
}

/// A Prometheus server, killed on drop.
struct Prometheus {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_real_prometheus_scrapes_ipmpd() -> Result<()> {
    let (t, _d) = setup()?;
    let dir = std::env::temp_dir().join(unique("prom"));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ipmpd\n    static_configs:\n      - targets: ['{METRICS}']\n"),
    )?;
    let listen = "127.0.0.1:9090";
    let child = t
        .host
        .command("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={listen}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log"))?)
        .spawn()
        .context("starting prometheus (Debian package prometheus)")?;
    let prom = Prometheus { child, dir };
    let until = Instant::now() + Duration::from_secs(60);
    let query = "/api/v1/query?query=ipmp_interface_active";
    while Instant::now() < until {
        if let Ok(body) = get(&t.host, listen, query) {
            if body.contains("\"status\":\"success\"") && body.contains("\"interface\":\"e1000g0\"")
            {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let log = std::fs::read_to_string(prom.dir.join("prometheus.log")).unwrap_or_default();
    bail!("Prometheus never returned ipmp_interface_active; its log:\n{log}")
}
