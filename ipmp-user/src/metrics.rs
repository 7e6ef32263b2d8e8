//! Prometheus metrics. At scrape time the counters are read from the
//! group's pinned maps (per-CPU values summed) and the states from a
//! snapshot the event loop makes when asked: building one costs work per
//! member, which an idle ipmpd should not do after every event. A loop
//! busy for longer than [`SNAPSHOT_WAIT`] does not hold a scrape up: the
//! last snapshot made answers.
use std::{net::SocketAddr, path::PathBuf};

use anyhow::{Context, Result};
use ipmp_common::{
    MemberCounters, ProbeCounts, DROP_REASONS, DROP_REASON_NAMES, RTT_BUCKET_BOUNDS_NS,
};
use prometheus::{
    proto::{Bucket, Histogram, LabelPair, Metric, MetricFamily, MetricType},
    Encoder, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::sync::{mpsc, oneshot};

use crate::{
    dataplane::PinnedCounters,
    model::{GroupState, GroupStatus, LinkState, MemberState, MemberStatus, ProbeState},
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

/// Whether a family is a gauge or a counter.
#[derive(Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
}

/// One member's status, its daemon-side source and its kernel counters.
type MemberValues<'a> = (&'a MemberStatus, &'a MemberSource, &'a MemberCounters);

/// A metric family with one series per member (labels group, interface).
struct MemberFamily {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    value: fn(MemberValues) -> u64,
}

const MEMBER_FAMILIES: &[MemberFamily] = &[
    MemberFamily {
        name: "ipmp_interface_active",
        help: "1 when the member carries traffic.",
        kind: Kind::Gauge,
        value: |(m, _, _)| u64::from(m.active),
    },
    MemberFamily {
        name: "ipmp_interface_link_up",
        help: "1 when the member's link is up.",
        kind: Kind::Gauge,
        value: |(m, _, _)| u64::from(m.link == LinkState::Up),
    },
    MemberFamily {
        name: "ipmp_flow_table_buckets",
        help: "Flow-table buckets (of 4096) pointing at the member.",
        kind: Kind::Gauge,
        value: |(_, s, _)| u64::from(s.buckets),
    },
    MemberFamily {
        name: "ipmp_interface_transmit_packets_total",
        help: "Packets the group sent through the member.",
        kind: Kind::Counter,
        value: |(_, _, c)| c.tx_packets,
    },
    MemberFamily {
        name: "ipmp_interface_transmit_bytes_total",
        help: "Bytes the group sent through the member.",
        kind: Kind::Counter,
        value: |(_, _, c)| c.tx_bytes,
    },
    MemberFamily {
        name: "ipmp_interface_receive_packets_total",
        help: "Packets received on the member.",
        kind: Kind::Counter,
        value: |(_, _, c)| c.rx_packets,
    },
    MemberFamily {
        name: "ipmp_interface_receive_bytes_total",
        help: "Bytes received on the member.",
        kind: Kind::Counter,
        value: |(_, _, c)| c.rx_bytes,
    },
    MemberFamily {
        name: "ipmp_interface_failures_total",
        help: "Times the member failed.",
        kind: Kind::Counter,
        value: |(_, s, _)| s.failures,
    },
    MemberFamily {
        name: "ipmp_interface_repairs_total",
        help: "Times the member was repaired.",
        kind: Kind::Counter,
        value: |(_, s, _)| s.repairs,
    },
    MemberFamily {
        name: "ipmp_probes_sent_total",
        help: "Probes sent from the member.",
        kind: Kind::Counter,
        value: |(_, s, _)| s.probes.sent,
    },
    MemberFamily {
        name: "ipmp_probes_acked_total",
        help: "The member's probes acknowledged in time by their target.",
        kind: Kind::Counter,
        value: |(_, s, _)| s.probes.acked,
    },
    MemberFamily {
        name: "ipmp_probes_lost_total",
        help: "The member's probes that got no reply in time.",
        kind: Kind::Counter,
        value: |(_, s, _)| s.probes.lost,
    },
    MemberFamily {
        name: "ipmp_probe_replies_rejected_total",
        help: "Echo replies to the member's test address that were not ours.",
        kind: Kind::Counter,
        value: |(_, _, c)| c.probe_replies_rejected,
    },
    MemberFamily {
        name: "ipmp_echo_requests_answered_total",
        help: "Echo requests to a data or test address answered in XDP on the member.",
        kind: Kind::Counter,
        value: |(_, _, c)| c.echo_answered,
    },
    MemberFamily {
        name: "ipmp_neighbour_requests_answered_total",
        help: "ARP requests and neighbour solicitations for a data address answered in XDP on its bound member.",
        kind: Kind::Counter,
        value: |(_, _, c)| c.neighbour_answered,
    },
    MemberFamily {
        name: "ipmp_cast_dropped_packets_total",
        help: "Broadcast and multicast data dropped on a member that is not the cast member, so applications see it once.",
        kind: Kind::Counter,
        value: |(_, _, c)| c.cast_dropped,
    },
];

/// A family that is 1 for the current state and 0 for the others, per
/// member (labels group, interface, state): the state words and which
/// one holds.
struct StateFamily {
    name: &'static str,
    help: &'static str,
    states: fn(&MemberStatus) -> Vec<(&'static str, bool)>,
}

/// Each state word of `all`, with whether it is `current`.
fn states<T: Copy + PartialEq>(
    all: &[T],
    current: T,
    word: fn(T) -> &'static str,
) -> Vec<(&'static str, bool)> {
    all.iter().map(|&s| (word(s), s == current)).collect()
}

const STATE_FAMILIES: &[StateFamily] = &[
    StateFamily {
        name: "ipmp_interface_state",
        help: "1 for the member's current state (ok, failed, offline, unknown), 0 for the others.",
        states: |m| states(MemberState::ALL, m.state, MemberState::as_str),
    },
    // ipmpstat -i PROBE, so "probing without a target" can be alerted on.
    StateFamily {
        name: "ipmp_interface_probe_state",
        help: "1 for the member's probe-based detection state (ok, failed, unknown: no target, disabled: no test address), 0 for the others.",
        states: |m| states(ProbeState::ALL, m.probe, ProbeState::as_str),
    },
];

/// The registered vector of a [`MemberFamily`].
enum Series {
    Gauge(IntGaugeVec),
    Counter(IntCounterVec),
}

/// The families of one registry, filled group by group.
struct Families {
    registry: Registry,
    group_state: IntGaugeVec,
    fdt: GaugeVec,
    drops: IntCounterVec,
    members: Vec<Series>,
    states: Vec<IntGaugeVec>,
    rtt: MetricFamily,
}

impl Families {
    fn new() -> Result<Families> {
        let registry = Registry::new();
        let gi = &["group", "interface"];
        let group_state = IntGaugeVec::new(
            Opts::new(
                "ipmp_group_state",
                "1 for the group's current state (ok, degraded, failed), 0 for the others.",
            ),
            &["group", "state"],
        )?;
        let fdt = GaugeVec::new(
            Opts::new(
                "ipmp_group_failure_detection_time_seconds",
                "The group's current failure detection time (groups that probe).",
            ),
            &["group"],
        )?;
        let drops = IntCounterVec::new(
            Opts::new(
                "ipmp_dataplane_dropped_packets_total",
                "Packets the dataplane dropped, by reason.",
            ),
            &["group", "reason"],
        )?;
        registry.register(Box::new(group_state.clone()))?;
        registry.register(Box::new(fdt.clone()))?;
        registry.register(Box::new(drops.clone()))?;
        let mut members = Vec::new();
        for f in MEMBER_FAMILIES {
            let opts = Opts::new(f.name, f.help);
            let series = match f.kind {
                Kind::Gauge => Series::Gauge(IntGaugeVec::new(opts, gi)?),
                Kind::Counter => Series::Counter(IntCounterVec::new(opts, gi)?),
            };
            match &series {
                Series::Gauge(g) => registry.register(Box::new(g.clone()))?,
                Series::Counter(c) => registry.register(Box::new(c.clone()))?,
            }
            members.push(series);
        }
        let mut states = Vec::new();
        for f in STATE_FAMILIES {
            let g = IntGaugeVec::new(Opts::new(f.name, f.help), &["group", "interface", "state"])?;
            registry.register(Box::new(g.clone()))?;
            states.push(g);
        }
        let mut rtt = MetricFamily::default();
        rtt.set_name("ipmp_probe_rtt_seconds".into());
        rtt.set_help("Probe round-trip times, bucketed in the kernel.".into());
        rtt.set_field_type(MetricType::HISTOGRAM);
        Ok(Families {
            registry,
            group_state,
            fdt,
            drops,
            members,
            states,
            rtt,
        })
    }

    /// Adds one group's series.
    fn add(&mut self, g: &GroupReading) {
        let status = &g.source.status;
        let name = status.name.as_str();
        for &s in GroupState::ALL {
            self.group_state
                .with_label_values(&[name, s.as_str()])
                .set(i64::from(status.state == s));
        }
        if let Some(ms) = status.fdt_ms {
            self.fdt.with_label_values(&[name]).set(ms as f64 / 1000.0);
        }
        for (reason, count) in DROP_REASON_NAMES.iter().zip(g.drops) {
            self.drops.with_label_values(&[name, reason]).inc_by(count);
        }
        let members = status
            .members
            .iter()
            .zip(&g.source.members)
            .zip(&g.counters);
        for ((m, src), c) in members {
            let l = [name, m.name.as_str()];
            for (f, series) in MEMBER_FAMILIES.iter().zip(&self.members) {
                let v = (f.value)((m, src, c));
                match series {
                    Series::Gauge(g) => g.with_label_values(&l).set(v as i64),
                    Series::Counter(c) => c.with_label_values(&l).inc_by(v),
                }
            }
            for (f, gauge) in STATE_FAMILIES.iter().zip(&self.states) {
                for (word, current) in (f.states)(m) {
                    gauge
                        .with_label_values(&[name, &m.name, word])
                        .set(i64::from(current));
                }
            }
            self.rtt.mut_metric().push(rtt_histogram(name, &m.name, c));
        }
    }

    fn encode(self) -> Result<String> {
        let mut families = self.registry.gather();
        families.push(self.rtt);
        let mut out = Vec::new();
        TextEncoder::new().encode(&families, &mut out)?;
        Ok(String::from_utf8(out)?)
    }
}

/// The Prometheus text exposition of `groups` (pure: no I/O).
pub fn encode(groups: &[GroupReading]) -> Result<String> {
    let mut families = Families::new()?;
    for g in groups {
        families.add(g);
    }
    families.encode()
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

/// How long a scrape waits for the event loop's snapshot.
pub const SNAPSHOT_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// A scrape's request for a snapshot, answered by the event loop.
pub type SnapshotRequest = oneshot::Sender<Snapshot>;

/// Serves `GET /metrics` until the daemon exits, asking the event loop
/// for each scrape's snapshot through `ask`; `first` (made at start)
/// answers until the loop has answered once.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ask: mpsc::Sender<SnapshotRequest>,
    first: Snapshot,
) -> Result<()> {
    let last = std::sync::Arc::new(std::sync::Mutex::new(first));
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let (ask, last) = (ask.clone(), last.clone());
            async move {
                let snapshot = fresh_snapshot(&ask, &last).await;
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

/// The event loop's snapshot, or the last one made if the loop does not
/// answer within [`SNAPSHOT_WAIT`].
async fn fresh_snapshot(
    ask: &mpsc::Sender<SnapshotRequest>,
    last: &std::sync::Mutex<Snapshot>,
) -> Snapshot {
    let (reply, answer) = oneshot::channel();
    if ask.try_send(reply).is_ok() {
        if let Ok(Ok(snapshot)) = tokio::time::timeout(SNAPSHOT_WAIT, answer).await {
            if let Ok(mut last) = last.lock() {
                *last = snapshot.clone();
            }
            return snapshot;
        }
    }
    last.lock().map(|s| s.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MemberFlags;

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
