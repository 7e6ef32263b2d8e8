//! Prometheus metrics. At scrape time the counters are read from the
//! group's pinned maps (per-CPU values summed) and the states from the
//! snapshot the event loop publishes, so a scrape never waits for ipmpd's
//! event loop, nor holds it up.
use std::{net::SocketAddr, path::PathBuf};

use anyhow::{Context, Result};
use ipmp_common::{
    MemberCounters, ProbeCounts, DROP_REASONS, DROP_REASON_NAMES, RTT_BUCKET_BOUNDS_NS,
};
use prometheus::{
    proto::{Bucket, Histogram, LabelPair, Metric, MetricFamily, MetricType},
    Encoder, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::sync::watch;

use crate::{
    dataplane::PinnedCounters,
    model::{GroupState, GroupStatus, LinkState, MemberState, ProbeState},
};

/// What the event loop publishes for metrics, per group.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub groups: Vec<GroupSource>,
}

#[derive(Clone, Debug)]
pub struct GroupSource {
    pub status: GroupStatus,
    /// Where the group's maps are pinned.
    pub pin_dir: PathBuf,
    /// Per member, in the order of `status.members`.
    pub members: Vec<MemberSource>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberSource {
    pub slot: u8,
    pub failures: u64,
    pub repairs: u64,
    /// The member's probes as ipmpd counted them.
    pub probes: ProbeCounts,
    /// Flow-table buckets the member owns.
    pub buckets: u32,
}

/// One group with its counters read, ready to encode.
pub struct GroupReading<'a> {
    pub source: &'a GroupSource,
    pub counters: Vec<MemberCounters>,
    pub drops: [u64; DROP_REASONS as usize],
}

const GROUP_STATES: [(GroupState, &str); 3] = [
    (GroupState::Ok, "ok"),
    (GroupState::Degraded, "degraded"),
    (GroupState::Failed, "failed"),
];
const MEMBER_STATES: [(MemberState, &str); 4] = [
    (MemberState::Ok, "ok"),
    (MemberState::Failed, "failed"),
    (MemberState::Offline, "offline"),
    (MemberState::Unknown, "unknown"),
];
const PROBE_STATES: [(ProbeState, &str); 4] = [
    (ProbeState::Ok, "ok"),
    (ProbeState::Failed, "failed"),
    (ProbeState::Unknown, "unknown"),
    (ProbeState::Disabled, "disabled"),
];

/// Reads every group's counters from its pins and encodes the lot.
pub fn scrape(snapshot: &Snapshot) -> Result<String> {
    let mut readings = Vec::with_capacity(snapshot.groups.len());
    for g in &snapshot.groups {
        let pins = PinnedCounters::open(&g.pin_dir)?;
        let counters = g
            .members
            .iter()
            .map(|m| pins.member(m.slot))
            .collect::<Result<_>>()?;
        readings.push(GroupReading {
            source: g,
            counters,
            drops: pins.drops()?,
        });
    }
    encode(&readings)
}

/// The Prometheus text exposition of `groups` (pure: no I/O).
pub fn encode(groups: &[GroupReading]) -> Result<String> {
    let registry = Registry::new();
    let gauge = |name: &str, help: &str, labels: &[&str]| -> Result<IntGaugeVec> {
        let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
        registry.register(Box::new(g.clone()))?;
        Ok(g)
    };
    let counter = |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec> {
        let c = IntCounterVec::new(Opts::new(name, help), labels)?;
        registry.register(Box::new(c.clone()))?;
        Ok(c)
    };
    let gi = &["group", "interface"];
    let group_state = gauge(
        "ipmp_group_state",
        "1 for the group's current state (ok, degraded, failed), 0 for the others.",
        &["group", "state"],
    )?;
    let active = gauge(
        "ipmp_interface_active",
        "1 when the member carries traffic.",
        gi,
    )?;
    let link_up = gauge(
        "ipmp_interface_link_up",
        "1 when the member's link is up.",
        gi,
    )?;
    let state = gauge(
        "ipmp_interface_state",
        "1 for the member's current state (ok, failed, offline, unknown), 0 for the others.",
        &["group", "interface", "state"],
    )?;
    // ipmpstat -i PROBE, so "probing without a target" can be alerted on.
    let probe = gauge(
        "ipmp_interface_probe_state",
        "1 for the member's probe-based detection state (ok, failed, unknown: no target, disabled: no test address), 0 for the others.",
        &["group", "interface", "state"],
    )?;
    let buckets = gauge(
        "ipmp_flow_table_buckets",
        "Flow-table buckets (of 4096) pointing at the member.",
        gi,
    )?;
    let tx_packets = counter(
        "ipmp_interface_transmit_packets_total",
        "Packets the group sent through the member.",
        gi,
    )?;
    let tx_bytes = counter(
        "ipmp_interface_transmit_bytes_total",
        "Bytes the group sent through the member.",
        gi,
    )?;
    let rx_packets = counter(
        "ipmp_interface_receive_packets_total",
        "Packets received on the member.",
        gi,
    )?;
    let rx_bytes = counter(
        "ipmp_interface_receive_bytes_total",
        "Bytes received on the member.",
        gi,
    )?;
    let failures = counter(
        "ipmp_interface_failures_total",
        "Times the member failed.",
        gi,
    )?;
    let repairs = counter(
        "ipmp_interface_repairs_total",
        "Times the member was repaired.",
        gi,
    )?;
    let drops = counter(
        "ipmp_dataplane_dropped_packets_total",
        "Packets the dataplane dropped, by reason.",
        &["group", "reason"],
    )?;
    let fdt = GaugeVec::new(
        Opts::new(
            "ipmp_group_failure_detection_time_seconds",
            "The group's current failure detection time (groups that probe).",
        ),
        &["group"],
    )?;
    registry.register(Box::new(fdt.clone()))?;
    let sent = counter("ipmp_probes_sent_total", "Probes sent from the member.", gi)?;
    let acked = counter(
        "ipmp_probes_acked_total",
        "The member's probes acknowledged in time by their target.",
        gi,
    )?;
    let echo = counter(
        "ipmp_echo_requests_answered_total",
        "Echo requests to a data or test address answered in XDP on the member.",
        gi,
    )?;
    let neighbour = counter(
        "ipmp_neighbour_requests_answered_total",
        "ARP requests and neighbour solicitations for a data address answered in XDP on its bound member.",
        gi,
    )?;
    let cast_dropped = counter(
        "ipmp_cast_dropped_packets_total",
        "Broadcast and multicast data dropped on a member that is not the cast member, so applications see it once.",
        gi,
    )?;
    let lost = counter(
        "ipmp_probes_lost_total",
        "The member's probes that got no reply in time.",
        gi,
    )?;
    let rejected = counter(
        "ipmp_probe_replies_rejected_total",
        "Echo replies to the member's test address that were not ours.",
        gi,
    )?;
    let mut rtt = MetricFamily::default();
    rtt.set_name("ipmp_probe_rtt_seconds".into());
    rtt.set_help("Probe round-trip times, bucketed in the kernel.".into());
    rtt.set_field_type(MetricType::HISTOGRAM);

    for g in groups {
        let status = &g.source.status;
        let name = status.name.as_str();
        for (s, word) in GROUP_STATES {
            group_state
                .with_label_values(&[name, word])
                .set(i64::from(status.state == s));
        }
        if let Some(ms) = status.fdt_ms {
            fdt.with_label_values(&[name]).set(ms as f64 / 1000.0);
        }
        for (reason, count) in DROP_REASON_NAMES.iter().zip(g.drops) {
            drops.with_label_values(&[name, reason]).inc_by(count);
        }
        for ((m, src), c) in status
            .members
            .iter()
            .zip(&g.source.members)
            .zip(&g.counters)
        {
            let l = [name, m.name.as_str()];
            active.with_label_values(&l).set(i64::from(m.active));
            link_up
                .with_label_values(&l)
                .set(i64::from(m.link == LinkState::Up));
            for (s, word) in MEMBER_STATES {
                state
                    .with_label_values(&[name, &m.name, word])
                    .set(i64::from(m.state == s));
            }
            for (s, word) in PROBE_STATES {
                probe
                    .with_label_values(&[name, &m.name, word])
                    .set(i64::from(m.probe == s));
            }
            buckets.with_label_values(&l).set(i64::from(src.buckets));
            tx_packets.with_label_values(&l).inc_by(c.tx_packets);
            tx_bytes.with_label_values(&l).inc_by(c.tx_bytes);
            rx_packets.with_label_values(&l).inc_by(c.rx_packets);
            rx_bytes.with_label_values(&l).inc_by(c.rx_bytes);
            failures.with_label_values(&l).inc_by(src.failures);
            repairs.with_label_values(&l).inc_by(src.repairs);
            sent.with_label_values(&l).inc_by(src.probes.sent);
            acked.with_label_values(&l).inc_by(src.probes.acked);
            lost.with_label_values(&l).inc_by(src.probes.lost);
            rejected
                .with_label_values(&l)
                .inc_by(c.probe_replies_rejected);
            echo.with_label_values(&l).inc_by(c.echo_answered);
            neighbour.with_label_values(&l).inc_by(c.neighbour_answered);
            cast_dropped.with_label_values(&l).inc_by(c.cast_dropped);
            rtt.mut_metric().push(rtt_histogram(name, &m.name, c));
        }
    }
    let mut families = registry.gather();
    families.push(rtt);
    let mut out = Vec::new();
    TextEncoder::new().encode(&families, &mut out)?;
    Ok(String::from_utf8(out)?)
}

/// The kernel's per-bucket RTT counts as a Prometheus histogram.
fn rtt_histogram(group: &str, interface: &str, c: &MemberCounters) -> Metric {
    let mut cumulative = 0;
    let mut buckets = Vec::with_capacity(RTT_BUCKET_BOUNDS_NS.len());
    for (bound, count) in RTT_BUCKET_BOUNDS_NS.iter().zip(c.rtt_buckets) {
        cumulative += count;
        let mut b = Bucket::default();
        b.set_upper_bound(*bound as f64 / 1e9);
        b.set_cumulative_count(cumulative);
        buckets.push(b);
    }
    let mut h = Histogram::default();
    h.set_bucket(buckets);
    h.set_sample_count(c.rtt_buckets.iter().sum());
    h.set_sample_sum(c.rtt_sum_ns as f64 / 1e9);
    let label = |n: &str, v: &str| {
        let mut l = LabelPair::default();
        l.set_name(n.into());
        l.set_value(v.into());
        l
    };
    let mut m = Metric::from_label(vec![label("group", group), label("interface", interface)]);
    m.set_histogram(h);
    m
}

/// Binds the metrics listener (at start, so a bad address stops ipmpd).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening for metrics on {addr}"))
}

/// Serves `GET /metrics` until the daemon exits.
pub async fn serve(
    listener: tokio::net::TcpListener,
    snapshot: watch::Receiver<Snapshot>,
) -> Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let snapshot = snapshot.borrow().clone();
            async move {
                // Map reads are syscalls: keep them off the runtime thread.
                let text = tokio::task::spawn_blocking(move || scrape(&snapshot)).await;
                match text {
                    Ok(Ok(text)) => Ok((
                        [(
                            axum::http::header::CONTENT_TYPE,
                            TextEncoder::new().format_type().to_string(),
                        )],
                        text,
                    )),
                    Ok(Err(e)) => Err((
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        format!("{e:#}"),
                    )),
                    Err(e) => Err((axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
                }
            }
        }),
    );
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MemberFlags, MemberStatus, ProbeState};

    fn member(name: &str, active: bool, link: LinkState, state: MemberState) -> MemberStatus {
        MemberStatus {
            name: name.into(),
            active,
            flags: MemberFlags::default(),
            link,
            probe: ProbeState::Disabled,
            state,
            probing: Vec::new(),
            xdp: None,
        }
    }

    #[test]
    fn encodes_states_counters_and_drops_with_help_and_type() {
        let source = GroupSource {
            status: GroupStatus {
                name: "production0".into(),
                state: GroupState::Degraded,
                fdt_ms: None,
                members: vec![
                    member("e1000g0", false, LinkState::Down, MemberState::Failed),
                    member("rge0", true, LinkState::Up, MemberState::Ok),
                ],
                addresses: Vec::new(),
            },
            pin_dir: PathBuf::new(),
            members: vec![
                MemberSource {
                    slot: 0,
                    failures: 2,
                    repairs: 1,
                    buckets: 0,
                    probes: ProbeCounts {
                        sent: 9,
                        acked: 5,
                        lost: 4,
                    },
                },
                MemberSource {
                    slot: 1,
                    buckets: 4096,
                    ..MemberSource::default()
                },
            ],
        };
        let counters = vec![
            MemberCounters {
                tx_packets: 5,
                tx_bytes: 500,
                rx_packets: 7,
                rx_bytes: 700,
                rtt_buckets: [1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                rtt_sum_ns: 600_000,
                ..MemberCounters::default()
            },
            MemberCounters {
                echo_answered: 3,
                neighbour_answered: 2,
                cast_dropped: 4,
                tx_packets: 11,
                tx_bytes: 1100,
                rx_packets: 13,
                rx_bytes: 1300,
                ..MemberCounters::default()
            },
        ];
        let text = encode(&[GroupReading {
            source: &source,
            counters,
            drops: [3, 0, 1],
        }])
        .unwrap();
        let g = "group=\"production0\"";
        for line in [
            format!("ipmp_group_state{{{g},state=\"degraded\"}} 1"),
            format!("ipmp_group_state{{{g},state=\"ok\"}} 0"),
            format!("ipmp_interface_active{{{g},interface=\"rge0\"}} 1"),
            format!("ipmp_interface_link_up{{{g},interface=\"e1000g0\"}} 0"),
            format!("ipmp_interface_state{{{g},interface=\"e1000g0\",state=\"failed\"}} 1"),
            format!("ipmp_interface_state{{{g},interface=\"e1000g0\",state=\"ok\"}} 0"),
            format!("ipmp_interface_probe_state{{{g},interface=\"rge0\",state=\"disabled\"}} 1"),
            format!("ipmp_interface_transmit_packets_total{{{g},interface=\"rge0\"}} 11"),
            format!("ipmp_interface_receive_bytes_total{{{g},interface=\"e1000g0\"}} 700"),
            format!("ipmp_interface_failures_total{{{g},interface=\"e1000g0\"}} 2"),
            format!("ipmp_interface_repairs_total{{{g},interface=\"e1000g0\"}} 1"),
            format!("ipmp_flow_table_buckets{{{g},interface=\"rge0\"}} 4096"),
            format!("ipmp_dataplane_dropped_packets_total{{{g},reason=\"no_active_member\"}} 3"),
            format!("ipmp_dataplane_dropped_packets_total{{{g},reason=\"malformed\"}} 1"),
            format!("ipmp_probes_sent_total{{{g},interface=\"e1000g0\"}} 9"),
            format!("ipmp_echo_requests_answered_total{{{g},interface=\"rge0\"}} 3"),
            format!("ipmp_neighbour_requests_answered_total{{{g},interface=\"rge0\"}} 2"),
            format!("ipmp_cast_dropped_packets_total{{{g},interface=\"rge0\"}} 4"),
            format!("ipmp_probes_acked_total{{{g},interface=\"e1000g0\"}} 5"),
            format!("ipmp_probes_lost_total{{{g},interface=\"e1000g0\"}} 4"),
            format!("ipmp_probe_rtt_seconds_bucket{{{g},interface=\"e1000g0\",le=\"0.00005\"}} 1"),
            format!("ipmp_probe_rtt_seconds_bucket{{{g},interface=\"e1000g0\",le=\"0.00025\"}} 5"),
            format!("ipmp_probe_rtt_seconds_bucket{{{g},interface=\"e1000g0\",le=\"+Inf\"}} 5"),
            format!("ipmp_probe_rtt_seconds_count{{{g},interface=\"e1000g0\"}} 5"),
            format!("ipmp_probe_rtt_seconds_sum{{{g},interface=\"e1000g0\"}} 0.0006"),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        // Every family has its HELP and TYPE.
        let families = text.lines().filter(|l| l.starts_with("# TYPE")).count();
        assert_eq!(
            families,
            text.lines().filter(|l| l.starts_with("# HELP")).count()
        );
        // 21 families; FDT appears only for groups that probe.
        assert_eq!(families, 21);
    }
}
