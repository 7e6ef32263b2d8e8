//! Replies to the probes (in.mpathd's `incoming_echo_reply`,
//! `incoming_rtt_reply` and `incoming_mcast_reply` in `mpd_probe.c`): an
//! acknowledged failure-detection probe, an RTT sample, a new host target.
use std::net::IpAddr;
use std::time::Duration;

use super::super::targets::SampleKind;
use super::super::{Family, MAX_PROBE_TARGETS, NUM_PROBE_REPAIRS};
use super::{GroupProber, InstanceRef, ProbeOutcome};

impl GroupProber {
    pub(super) fn fd_reply(
        &mut self,
        at: InstanceRef,
        now: Duration,
        seq: u16,
        from: IpAddr,
        rtt: Duration,
    ) {
        let (interval, group_failed) = (self.fdt.interval, self.group_failed);
        let ok = self.members[at.member].ok;
        let i = self.instance_mut(at);
        // Only the last PROBE_HISTORY probes are remembered (anything else
        // is out of window), and only the first reply, from the target the
        // probe went to, counts.
        let Some((pos, sent)) = i.history.acknowledge(seq, from, now) else {
            return;
        };
        if now < i.quiet_until {
            // Our probes get through: no quiet period needed any more.
            i.quiet_until = now;
            i.quiet_checked = true;
        }
        let sample = ok && !group_failed && i.history.newest_ack_of_target(pos, from);
        if sample {
            if let Some(t) = i.targets.get_mut(from) {
                t.rtt.sample(rtt, interval, SampleKind::FailureDetection);
            }
        }
        self.report(at, &sent, ProbeOutcome::Acked { rtt });
        if sample {
            self.adapt(at, from, now, SampleKind::FailureDetection);
        }
        let m = &self.members[at.member];
        if !m.ok {
            let history = &m.instances[at.instance].history;
            if history.consecutive_acks() >= NUM_PROBE_REPAIRS
                || history.consecutive_target_acks(from) >= NUM_PROBE_REPAIRS
            {
                self.repair_member(at.member);
            }
        }
    }

    pub(super) fn rtt_reply(
        &mut self,
        at: InstanceRef,
        now: Duration,
        from: IpAddr,
        rtt: Duration,
    ) {
        if !self.members[at.member].ok || self.group_failed {
            return;
        }
        let interval = self.fdt.interval;
        let Some(t) = self.instance_mut(at).targets.get_mut(from) else {
            return;
        };
        t.rtt.sample(rtt, interval, SampleKind::RttOnly);
        self.adapt(at, from, now, SampleKind::RttOnly);
    }

    /// A responder to discovery becomes a host target of every member
    /// probing in that family that takes hosts (in.mpathd's
    /// `incoming_mcast_reply`).
    pub(super) fn discovery_reply(&mut self, at: InstanceRef, now: Duration, from: IpAddr) {
        let i = self.instance(at);
        let family = i.family;
        let usable = match from {
            IpAddr::V4(a) => !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast(),
            // IPv6 probes come from the link-local address and only
            // link-local replies count (in.mpathd).
            IpAddr::V6(a) => a.is_unicast_link_local(),
        };
        // Routers win over hosts, and the receiving member must have room.
        if !usable
            || Family::of(&from) != family
            || i.targets.are_routers()
            || i.targets.len() >= MAX_PROBE_TARGETS
        {
            return;
        }
        for m in &mut self.members {
            if let Some(j) = m.instance(family) {
                m.instances[j].targets.add_host(from, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::history::Fate;
    use super::super::sim::*;
    use super::super::*;
    use crate::model::{ProbeMode, ProbeState};
    use crate::probe::Family;
    use std::net::IpAddr;

    #[test]
    fn multicast_discovery_turns_responders_into_targets() {
        // Seven responders, the nearest first; only five become targets.
        let mut sim = Sim::new(
            always(1.0),
            Box::new(|_, p| match p.kind {
                ProbeKind::TargetDiscovery => (1..=7).map(|d| (v4(20 + d), ms(d as u64))).collect(),
                _ => vec![(p.target, RTT)],
            }),
        );
        sim.add("a", &[Family::V4]);
        assert_eq!(sim.p.probe_state("a"), ProbeState::Unknown);
        assert_eq!(
            sim.p.view("a", Family::V4).unwrap().mode,
            ProbeMode::Multicast
        );
        sim.run_until(secs(8));
        let hosts: Vec<IpAddr> = (21..=25).map(v4).collect();
        assert_eq!(sim.targets("a", Family::V4), hosts);
        assert_eq!(sim.p.probe_state("a"), ProbeState::Ok);
        // One discovery probe at 1 s, then round-robin over the five.
        let discovery = sim.probes("a", ProbeKind::TargetDiscovery);
        assert_eq!(discovery.len(), 1);
        assert_eq!(discovery[0].0, secs(1));
        let order: Vec<IpAddr> = sim.fd_probes("a").iter().map(|p| p.1).collect();
        assert_eq!(order, [&hosts[..], &hosts[..2]].concat());
    }

    #[test]
    fn routers_win_over_discovered_hosts() {
        let mut sim = Sim::new(
            always(1.0),
            Box::new(|_, p| match p.kind {
                ProbeKind::TargetDiscovery => vec![(v4(21), ms(1)), (v4(22), ms(2))],
                _ => vec![(p.target, RTT)],
            }),
        );
        sim.add("a", &[Family::V4]);
        sim.add("b", &[Family::V4]);
        sim.run_until(secs(5));
        assert_eq!(sim.targets("a", Family::V4), [v4(21), v4(22)]);
        sim.p.set_routers("a", Family::V4, vec![v4(1)]);
        let view = sim.p.view("a", Family::V4).unwrap();
        assert_eq!(
            (view.mode, sim.targets("a", Family::V4)),
            (ProbeMode::Routes, vec![v4(1)])
        );
        assert_eq!(sim.targets("b", Family::V4), [v4(21), v4(22)]);
        // A responder found by b is not a's target: a has a router.
        sim.p.on_reply(
            sim.now,
            &echo(
                "b",
                Family::V4,
                0,
                ProbeKind::TargetDiscovery,
                v4(23),
                ms(1),
            ),
        );
        assert_eq!(sim.targets("a", Family::V4), [v4(1)]);
        assert_eq!(sim.targets("b", Family::V4), [v4(21), v4(22), v4(23)]);
        // An explicit target comes before the routers, and drives b's hosts
        // out too.
        sim.p.set_explicit_targets(vec![v4(2)]);
        assert_eq!(sim.targets("a", Family::V4), [v4(2), v4(1)]);
        assert_eq!(sim.targets("b", Family::V4), [v4(2)]);
        sim.run_until(secs(10));
        assert!(sim
            .fd_probes("a")
            .iter()
            .filter(|p| p.0 > secs(5))
            .all(|p| p.1 == v4(1) || p.1 == v4(2)));
        assert!(sim.events.is_empty());
    }

    #[test]
    fn replies_from_elsewhere_or_for_unknown_probes_do_not_count() {
        // Nothing answers by itself; replies are handed in by the test.
        let mut sim = Sim::new(always(1.0), Box::new(|_, _| vec![]));
        sim.p.set_explicit_targets(vec![v4(1), v4(2)]);
        sim.add("a", &[Family::V4]);
        sim.run_until(at(1, 1));
        assert_eq!(sim.fd_probes("a"), [(secs(1), v4(1), 1)]);
        let fate = |sim: &Sim| sim.p.members[0].instances[0].history.fates()[0];
        let now = sim.now;
        let reply = |sim: &mut Sim, seq: u16, from: IpAddr| {
            sim.p.on_reply(
                now,
                &echo("a", Family::V4, seq, ProbeKind::FailureDetection, from, RTT),
            )
        };
        // From another target than the probe went to.
        reply(&mut sim, 1, v4(2));
        // For a probe never sent.
        reply(&mut sim, 2, v4(1));
        reply(&mut sim, 9, v4(2));
        assert_eq!(fate(&sim), Fate::Pending);
        assert!(sim.p.drain_reports().is_empty());
        // The real one, then a duplicate.
        reply(&mut sim, 1, v4(1));
        reply(&mut sim, 1, v4(1));
        assert_eq!(fate(&sim), Fate::Acked(now));
        assert_eq!(sim.p.drain_reports().len(), 1);
        assert_eq!(sim.crtt("a", Family::V4, v4(1)), ms(30));
        // RTT-only replies from a stranger, discovery replies that are no
        // unicast neighbour: nothing.
        sim.p.on_reply(
            now,
            &echo("a", Family::V4, 0, ProbeKind::RttOnly, v4(9), ms(1)),
        );
        for from in ["0.0.0.0", "224.0.0.1", "2001:db8::1"] {
            let from: IpAddr = from.parse().unwrap();
            sim.p.on_reply(
                now,
                &echo("a", Family::V4, 0, ProbeKind::TargetDiscovery, from, ms(1)),
            );
        }
        assert_eq!(sim.targets("a", Family::V4), [v4(1), v4(2)]);
        // Nothing counts while the link is down.
        sim.run_until(secs(3));
        sim.p.link_changed("a", false, sim.now);
        let before = sim.p.drain_reports().len();
        reply(&mut sim, 3, v4(1));
        assert_eq!(sim.p.drain_reports().len(), 0);
        assert!(before > 0);
    }
}
