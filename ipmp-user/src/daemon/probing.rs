//! One group's probing at run time: the pure prober's decisions carried
//! out with raw sockets, the kernel's timed replies fed back to it, and
//! what ipmpstat -t/-p and the metrics show of it.
use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    time::Duration,
};

use ipmp_common::{probe_identifier, ProbeCounts, ProbeReply};
use ipnet::{IpNet, Ipv4Net};
use tokio::sync::broadcast;
use tracing::{debug, error, warn};

use crate::{
    config::{DaemonConfig, GroupConfig, MemberConfig},
    model::{GroupStatus, MemberState, ProbeRecord, ProbeState, ProbingStatus},
    probe::{
        socket::{monotonic_ns, ProbeSocket},
        EchoReply, Family, GroupProber, ProbeKind, ProbeOutcome, ProberEvent,
    },
};

struct ProbeMember {
    name: String,
    slot: u8,
    test_v4: Option<Ipv4Net>,
    families: Vec<Family>,
    /// The interface's index and link-local address while it exists.
    ifindex: Option<u32>,
    link_local: Option<Ipv6Addr>,
    sockets: HashMap<Family, ProbeSocket>,
    counts: ProbeCounts,
    /// IPv6 routers the kernel heard on this member (Router Advertisements).
    heard_routers: Vec<IpAddr>,
    /// Since when the member has been in the group; `None` once it was
    /// warned about probing without a test address (or needs no warning).
    untested_since: Option<Duration>,
}

/// in.mpathd waits this long for a test address to be configured before
/// it warns that a member has none.
const TEST_ADDRESS_GRACE: Duration = Duration::from_secs(20);

pub struct Probing {
    prober: GroupProber,
    members: Vec<ProbeMember>,
    probe_key: [u64; 2],
    /// This host's addresses: a discovery reply from one is no target.
    own: Vec<IpAddr>,
    /// The group has an IPv6 data address or target: members probe over
    /// IPv6 too.
    v6: bool,
    /// ipmpd's own RTT of acknowledged probes, until they are reported.
    rtt_seen: HashMap<(usize, u16), u64>,
    records: broadcast::Sender<ProbeRecord>,
    /// CLOCK_MONOTONIC (ns) at the prober's time zero.
    epoch_ns: u64,
    /// The gateways of the group interface's routes.
    gateways: Vec<IpAddr>,
    /// When the prober sent each recent probe, by (member, family, seq):
    /// a reply counts as of that time plus the kernel's RTT.
    sent_at: HashMap<(usize, Family, u16), Duration>,
}

/// Probes whose send time is remembered (far more than can be in flight).
const SENT_REMEMBERED: usize = 4096;

impl Probing {
    /// The group's prober, without members yet ([`Self::add_member`]).
    pub fn new(
        config: &GroupConfig,
        daemon: &DaemonConfig,
        probe_key: [u64; 2],
        records: broadcast::Sender<ProbeRecord>,
        epoch_ns: u64,
    ) -> Probing {
        let prober = GroupProber::new(
            &config.name,
            Duration::from_millis(config.fdt_ms(daemon)),
            Duration::from_millis(daemon.startup_quiet_ms),
        );
        let mut probing = Probing {
            prober,
            members: Vec::new(),
            probe_key,
            own: Vec::new(),
            v6: false,
            rtt_seen: HashMap::new(),
            records,
            epoch_ns,
            gateways: Vec::new(),
            sent_at: HashMap::new(),
        };
        probing.configure(config, daemon);
        probing
    }

    /// The group-wide settings a reload may change: targets, FDT, the data
    /// addresses (never targets).
    pub fn configure(&mut self, config: &GroupConfig, daemon: &DaemonConfig) {
        self.prober.set_explicit_targets(config.targets.clone());
        self.prober
            .set_configured_fdt(Duration::from_millis(config.fdt_ms(daemon)));
        self.prober
            .set_startup_quiet(Duration::from_millis(daemon.startup_quiet_ms));
        // A group with IPv6 probes over IPv6 by itself, as in.mpathd does
        // on interfaces with IPv6 plumbed: from the members' link-local
        // addresses (which every member has) to routers or, without
        // any, hosts found by ff02::1 discovery.
        self.v6 = config.targets.iter().any(IpAddr::is_ipv6)
            || config.data_addresses.iter().any(|a| a.addr().is_ipv6());
        self.own = config.data_addresses.iter().map(IpNet::addr).collect();
        self.own.extend(
            self.members
                .iter()
                .filter_map(|m| m.test_v4.map(|t| IpAddr::V4(t.addr()))),
        );
        self.own.extend(
            self.members
                .iter()
                .filter_map(|m| m.link_local.map(IpAddr::V6)),
        );
    }

    /// Adds a member at the end; `counts` are its probes sent and lost so
    /// far (from the pins). Returns whether it probes.
    pub fn add_member(
        &mut self,
        m: &MemberConfig,
        slot: u8,
        counts: ProbeCounts,
        now: Duration,
    ) -> bool {
        let mut families = Vec::new();
        let duplicate = m.test_address.filter(|t| {
            self.members
                .iter()
                .any(|o| o.test_v4.is_some_and(|ot| ot.addr() == t.addr()))
        });
        match (m.test_address, duplicate) {
            (Some(_), None) => families.push(Family::V4),
            (_, Some(t)) => error!(
                "Test address {} is not unique in group; disabling probe-based failure \
                 detection on {}",
                t.addr(),
                m.interface
            ),
            (None, None) => {}
        }
        if self.v6 {
            families.push(Family::V6);
        }
        self.prober
            .add_member(&m.interface, &families, now, &mut || rand::random());
        self.own
            .extend(m.test_address.map(|t| IpAddr::V4(t.addr())));
        self.members.push(ProbeMember {
            name: m.interface.clone(),
            slot,
            test_v4: m.test_address,
            families,
            ifindex: None,
            link_local: None,
            sockets: HashMap::new(),
            counts,
            heard_routers: Vec::new(),
            untested_since: Some(now),
        });
        self.probes(slot)
    }

    /// The position of the member in `slot` in [`Self::members`].
    fn index(&self, slot: u8) -> usize {
        self.members
            .iter()
            .position(|m| m.slot == slot)
            .unwrap_or_else(|| panic!("no probing member in slot {slot}"))
    }

    /// Member `i` was failed by a previous ipmpd's probes: it stays failed
    /// until acknowledged probes repair it.
    pub fn restore_failed(&mut self, slot: u8, now: Duration) {
        let i = self.index(slot);
        self.prober.restore_failed(&self.members[i].name, now);
    }

    pub fn remove_member(&mut self, slot: u8) {
        let m = self.members.remove(self.index(slot));
        self.prober.remove_member(&m.name);
    }

    /// in.mpathd's warning for members without probing, once they have
    /// been in the group for its grace period.
    fn warn_untested(&mut self, now: Duration) {
        for m in &mut self.members {
            let due = m
                .untested_since
                .is_some_and(|t| now >= t + TEST_ADDRESS_GRACE);
            if due && m.families.is_empty() && m.test_v4.is_none() {
                warn!("No test address configured on interface {}; disabling probe-based failure detection on it", m.name);
            }
            if due || !m.families.is_empty() {
                m.untested_since = None;
            }
        }
    }

    /// Whether the member in `slot` probes at all (in.mpathd: has a test
    /// address).
    fn probes(&self, slot: u8) -> bool {
        !self.members[self.index(slot)].families.is_empty()
    }

    pub fn any(&self) -> bool {
        self.members.iter().any(|m| !m.families.is_empty())
    }

    /// The member in `slot` exists (again) as `ifindex`; sockets are
    /// opened afresh, and a member that appears starts probing with its
    /// own start-up quiet period.
    pub fn present(&mut self, slot: u8, ifindex: u32, link_local: Option<Ipv6Addr>, now: Duration) {
        let i = self.index(slot);
        let m = &mut self.members[i];
        if m.ifindex != Some(ifindex) {
            m.sockets.clear();
            // A new interface has its own link-local address (none yet
            // while in duplicate address detection): the old one's would
            // bind no socket.
            m.link_local = None;
            if m.ifindex.is_none() {
                self.prober.start_quiet(&m.name, now);
            }
        }
        m.ifindex = Some(ifindex);
        m.link_local = link_local.or(m.link_local);
        self.own.extend(link_local.map(IpAddr::V6));
    }

    /// Whether the member in `slot` probes over IPv6 but has no usable
    /// link-local address yet (it may still be in duplicate address
    /// detection).
    pub fn awaits_link_local(&self, slot: u8) -> bool {
        let m = &self.members[self.index(slot)];
        m.families.contains(&Family::V6) && m.ifindex.is_some() && m.link_local.is_none()
    }

    pub fn gone(&mut self, slot: u8, now: Duration) {
        let i = self.index(slot);
        let m = &mut self.members[i];
        m.ifindex = None;
        m.sockets.clear();
        self.prober.link_changed(&m.name, false, now);
    }

    /// An offline member is not probed (if_mpadm -d).
    pub fn set_offline(&mut self, slot: u8, offline: bool, now: Duration) {
        let i = self.index(slot);
        self.prober.set_offline(&self.members[i].name, offline, now);
    }

    pub fn link(&mut self, slot: u8, up: bool, now: Duration) {
        let i = self.index(slot);
        self.prober.link_changed(&self.members[i].name, up, now);
    }

    /// The group's gateways: a member probes those inside its test prefix
    /// (IPv4) and the link-local ones (IPv6).
    pub fn set_gateways(&mut self, gateways: &[IpAddr]) {
        self.gateways = gateways.to_vec();
        for i in 0..self.members.len() {
            self.set_routers(i);
        }
    }

    /// The IPv6 routers the kernel heard on the member in `slot` (in.mpathd
    /// also takes routers from Router Advertisements); they join the
    /// gateways.
    pub fn set_heard_routers(&mut self, slot: u8, routers: Vec<Ipv6Addr>) {
        let i = self.index(slot);
        let routers: Vec<IpAddr> = routers.into_iter().map(IpAddr::V6).collect();
        if self.members[i].heard_routers != routers {
            self.members[i].heard_routers = routers;
            self.set_routers(i);
        }
    }

    fn set_routers(&mut self, i: usize) {
        let m = &self.members[i];
        for &family in &m.families {
            let mut routers: Vec<IpAddr> = self
                .gateways
                .iter()
                .copied()
                .filter(|g| match (family, g) {
                    (Family::V4, IpAddr::V4(a)) => m.test_v4.is_some_and(|t| t.contains(a)),
                    (Family::V6, IpAddr::V6(a)) => a.is_unicast_link_local(),
                    _ => false,
                })
                .collect();
            if family == Family::V6 {
                for r in &m.heard_routers {
                    if !routers.contains(r) {
                        routers.push(*r);
                    }
                }
            }
            self.prober.set_routers(&m.name, family, routers);
        }
    }

    /// Whether the member in `slot` probes over IPv6 (and so wants the
    /// routers heard).
    pub fn probes_v6(&self, slot: u8) -> bool {
        self.members[self.index(slot)]
            .families
            .contains(&Family::V6)
    }

    pub fn next_deadline(&self) -> Option<Duration> {
        let warning = self
            .members
            .iter()
            .filter_map(|m| m.untested_since)
            .map(|t| t + TEST_ADDRESS_GRACE)
            .min();
        match (self.prober.next_deadline(), warning) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends the probes due at `now`; returns the prober's events.
    pub fn poll(&mut self, now: Duration) -> Vec<ProberEvent> {
        self.warn_untested(now);
        let (probes, events) = self.prober.poll(now, &mut || rand::random());
        for p in probes {
            let Some(i) = self.members.iter().position(|m| m.name == p.member) else {
                continue;
            };
            let (scope, key) = (self.members[i].ifindex.unwrap_or(0), self.probe_key);
            let Some(socket) = self.socket(i, p.family) else {
                continue;
            };
            match socket.send(p.target, scope, p.seq, p.kind.code(), &key) {
                Ok(()) => {
                    debug!(
                        "probe {} {:?} seq {} {:?} to {} at {now:?}",
                        p.member, p.family, p.seq, p.kind, p.target
                    );
                    self.members[i].counts.sent += 1;
                    if self.sent_at.len() >= SENT_REMEMBERED {
                        self.sent_at.clear();
                    }
                    self.sent_at.insert((i, p.family, p.seq), now);
                }
                Err(e) => debug!("probe from {} to {} not sent: {e}", p.member, p.target),
            }
        }
        self.report();
        events
    }

    /// The member's socket for `family`, opened when first needed (an IPv6
    /// link-local address may still be in duplicate address detection).
    fn socket(&mut self, i: usize, family: Family) -> Option<&ProbeSocket> {
        let m = &mut self.members[i];
        if !m.sockets.contains_key(&family) {
            let ident = probe_identifier(m.slot);
            let opened = match family {
                Family::V4 => ProbeSocket::v4(&m.name, m.test_v4?.addr(), ident),
                Family::V6 => ProbeSocket::v6(&m.name, m.ifindex?, m.link_local?, ident),
            };
            match opened {
                Ok(s) => {
                    m.sockets.insert(family, s);
                }
                Err(e) => {
                    debug!("{e:#}");
                    return None;
                }
            }
        }
        m.sockets.get(&family)
    }

    /// A timed reply from XDP. It counts as of its arrival in the kernel,
    /// not of when ipmpd got to it: a probe answered in time is never lost
    /// to ipmpd's own latency.
    pub fn reply(&mut self, reply: &ProbeReply) -> Vec<ProberEvent> {
        let Some(i) = self
            .members
            .iter()
            .position(|m| m.slot as u32 == reply.slot)
        else {
            return Vec::new();
        };
        let (family, from) = match reply.family {
            4 => (
                Family::V4,
                IpAddr::from([reply.from[0], reply.from[1], reply.from[2], reply.from[3]]),
            ),
            _ => (Family::V6, IpAddr::from(reply.from)),
        };
        let rtt = Duration::from_nanos(reply.rtt_ns);
        // The prober's own send time plus the kernel's RTT, or else the
        // arrival by the payload's timestamp.
        let now = match self.sent_at.remove(&(i, family, reply.seq)) {
            Some(sent) => sent + rtt,
            None => {
                Duration::from_nanos((reply.sent_ns + reply.rtt_ns).saturating_sub(self.epoch_ns))
            }
        };
        let Some(kind) = ProbeKind::from_code(reply.kind as u32) else {
            return Vec::new();
        };
        if kind == ProbeKind::TargetDiscovery && self.own.contains(&from) {
            return Vec::new();
        }
        self.rtt_seen
            .insert((i, reply.seq), monotonic_ns().saturating_sub(reply.sent_ns));
        let name = self.members[i].name.clone();
        debug!(
            "reply {name} {family:?} seq {} {kind:?} from {from} rtt {rtt:?} as of {now:?}",
            reply.seq
        );
        let echo = EchoReply {
            member: &name,
            family,
            seq: reply.seq,
            kind,
            from,
            rtt,
        };
        let events = self.prober.on_reply(now, &echo);
        self.report();
        events
    }

    /// Hands the prober's per-probe reports to `ipmpctl stat -p` followers
    /// and counts the lost ones.
    fn report(&mut self) {
        for r in self.prober.drain_reports() {
            let Some(i) = self.members.iter().position(|m| m.name == r.member) else {
                continue;
            };
            let (net_rtt, rtt) = match r.outcome {
                ProbeOutcome::Acked { rtt } => {
                    self.members[i].counts.acked += 1;
                    (
                        Some(rtt.as_nanos() as u64),
                        self.rtt_seen.remove(&(i, r.seq)),
                    )
                }
                ProbeOutcome::Lost => {
                    self.members[i].counts.lost += 1;
                    (None, None)
                }
            };
            let Some(target) = r.target else { continue };
            let view = self.prober.view(&r.member, r.family);
            let estimate = view
                .as_ref()
                .and_then(|v| v.targets.iter().find(|t| t.address == target));
            let _ = self.records.send(ProbeRecord {
                interface: r.member,
                seq: r.seq,
                target,
                net_rtt_ns: net_rtt,
                rtt_ns: rtt,
                rtt_avg_ns: estimate
                    .and_then(|t| t.rtt_avg)
                    .map(|d| d.as_nanos() as u64),
                rtt_dev_ns: estimate
                    .and_then(|t| t.rtt_dev)
                    .map(|d| d.as_nanos() as u64),
            });
        }
        // A reply the prober did not report (late, duplicate) leaves nothing.
        self.rtt_seen.clear();
    }

    /// The probe counts of the member in `slot`, for metrics and the pins.
    pub fn counts(&self, slot: u8) -> ProbeCounts {
        self.members[self.index(slot)].counts
    }

    /// The addresses XDP matches replies against: (IPv4 test address,
    /// link-local address), as far as the member in `slot` probes in them.
    pub fn test_addresses(&self, slot: u8) -> (Option<std::net::Ipv4Addr>, Option<Ipv6Addr>) {
        let m = &self.members[self.index(slot)];
        let v6 = m
            .families
            .contains(&Family::V6)
            .then_some(m.link_local)
            .flatten();
        (m.test_v4.map(|t| t.addr()), v6)
    }

    /// Adds the probing state to a group's status: FDT, PROBE and -t rows.
    pub fn fill(&self, status: &mut GroupStatus) {
        if !self.any() {
            return;
        }
        status.fdt_ms = Some(self.prober.fdt().as_millis() as u64);
        for (s, m) in status.members.iter_mut().zip(&self.members) {
            if m.families.is_empty() {
                continue;
            }
            // PROBE shows failed whenever the member is failed (ipmpstat).
            s.probe = match (s.state, self.prober.probe_state(&m.name)) {
                (MemberState::Failed, _) => ProbeState::Failed,
                (_, state) => state,
            };
            s.probing = m
                .families
                .iter()
                .filter_map(|&f| {
                    let view = self.prober.view(&m.name, f)?;
                    Some(ProbingStatus {
                        mode: view.mode,
                        test_address: match f {
                            Family::V4 => m.test_v4.map(|t| IpAddr::V4(t.addr())),
                            Family::V6 => m.link_local.map(IpAddr::V6),
                        },
                        targets: view.targets.iter().map(|t| t.address).collect(),
                    })
                })
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    #[test]
    fn a_recreated_member_waits_for_its_new_link_local_address() {
        let config = Config::parse(
            "[[group]]\nname = \"g0\"\ndata_addresses = [\"2001:db8::200/64\"]\n\
             [[group.member]]\ninterface = \"e0\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let group = &config.groups[0];
        let (records, _) = broadcast::channel(1);
        let mut p = Probing::new(group, &config.daemon, [0; 2], records, 0);
        let now = Duration::ZERO;
        assert!(p.add_member(&group.members[0], 0, ProbeCounts::default(), now));
        let old: Ipv6Addr = "fe80::1".parse().unwrap();
        p.present(0, 7, Some(old), now);
        assert!(!p.awaits_link_local(0));
        p.gone(0, now);
        // The new interface's link-local address is still in DAD.
        p.present(0, 8, None, now);
        assert!(p.awaits_link_local(0));
        assert_eq!(p.test_addresses(0), (None, None));
    }
}
