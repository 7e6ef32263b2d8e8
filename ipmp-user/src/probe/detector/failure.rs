//! Failure and repair: what lost and acknowledged probes decide about a
//! target, a member and the whole group (in.mpathd's `failure_state` and
//! the repair half of `incoming_echo_reply`, in `mpd_probe.c`).
use std::net::IpAddr;
use std::time::Duration;

use super::super::targets::SetAside;
use super::super::NUM_PROBE_FAILS;
use super::{GroupProber, InstanceRef, ProberEvent};

impl GroupProber {
    /// After losses: a dead target, an interface failure or a group
    /// failure (in.mpathd's `failure_state`).
    pub(super) fn check_failure(&mut self, at: InstanceRef, now: Duration) {
        let m = &self.members[at.member];
        if !m.ok || !m.probing() {
            return;
        }
        let i = &m.instances[at.instance];
        // Losses during the start-up quiet period may be a switch port
        // still blocking (spanning tree): judge them when it ends.
        if now < i.quiet_until {
            return;
        }
        let (losses, first_loss) = i.history.consecutive_losses();
        if losses < NUM_PROBE_FAILS {
            if let Some(target) = i.history.latest_lost_target() {
                if i.history.consecutive_target_losses(target) >= NUM_PROBE_FAILS {
                    self.target_dead(at, target, now);
                }
            }
            return;
        }
        let mut first_loss = first_loss.unwrap_or(now);
        for (j, other) in m.instances.iter().enumerate() {
            if j == at.instance || other.targets.active_count() == 0 {
                continue;
            }
            // Both families probe: the member fails only if both do.
            let (losses, first) = other.history.consecutive_losses();
            if losses < NUM_PROBE_FAILS {
                return;
            }
            first_loss = first.map_or(first_loss, |t| t.min(first_loss));
        }
        let interface_failure = self
            .members
            .iter()
            .enumerate()
            .any(|(j, o)| j != at.member && o.shows_life_since(first_loss, self.group_failed));
        if interface_failure {
            self.fail_member(at.member);
        } else {
            self.group_failure(at.member);
        }
    }

    fn target_dead(&mut self, at: InstanceRef, target: IpAddr, now: Duration) {
        if self.instance_mut(at).targets.declare_dead(target, now) == SetAside::Deleted {
            self.target_deleted(at, target);
        }
    }

    /// A host target set aside (dead or slow) was deleted: its probes are
    /// forgotten and a discovery probe looks for another at once.
    pub(super) fn target_deleted(&mut self, at: InstanceRef, target: IpAddr) {
        self.forget(at, &[target]);
        self.queue_discovery(at);
    }

    fn fail_member(&mut self, mi: usize) {
        let m = &mut self.members[mi];
        m.ok = false;
        for i in &mut m.instances {
            i.targets.reset_rtt();
        }
        self.events.push(ProberEvent::Failure(m.name.clone()));
    }

    /// Every member failed together, `first` noticed it: they all fail and
    /// the host targets go, since they may all have changed at once; the
    /// next probes rediscover them (in.mpathd's GROUP_FAILURE and
    /// `target_flush_hosts`).
    pub(super) fn group_failure(&mut self, first: usize) {
        self.group_failed = true;
        let order = std::iter::once(first).chain((0..self.members.len()).filter(|&j| j != first));
        for mi in order {
            let m = &mut self.members[mi];
            if m.ok && m.probing() {
                m.ok = false;
                self.events.push(ProberEvent::Failure(m.name.clone()));
            }
        }
        for at in self.instance_refs() {
            let i = self.instance_mut(at);
            i.targets.reset_rtt();
            let flushed = i.targets.flush_hosts();
            self.forget(at, &flushed);
        }
        for m in &mut self.members {
            if !m.instances.is_empty() && !m.ok {
                m.awaiting_group_repair = true;
            }
        }
    }

    pub(super) fn repair_member(&mut self, mi: usize) {
        let m = &mut self.members[mi];
        m.ok = true;
        m.awaiting_group_repair = false;
        m.kept_failed_until = None;
        self.events.push(ProberEvent::Repair(m.name.clone()));
        self.group_repaired();
    }

    /// Some member works again: the group failure is over, and members
    /// without targets are treated as working again.
    pub(super) fn group_repaired(&mut self) {
        if self.group_failed {
            self.group_failed = false;
            for m in &mut self.members {
                m.awaiting_group_repair = false;
            }
        }
    }

    /// Repairs the failed members that have no target at all: without
    /// targets a member is treated as working (probe state `unknown`).
    pub(super) fn settle(&mut self) {
        let now = self.last_now;
        while let Some(mi) = self.members.iter().position(|m| {
            !m.ok
                && m.probing()
                && !m.awaiting_group_repair
                && m.kept_failed_until.is_none_or(|until| now >= until)
                && !m.has_targets()
        }) {
            self.repair_member(mi);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::sim::*;
    use super::super::*;
    use crate::model::{ProbeMode, ProbeState};
    use crate::probe::targets::TargetStatus;
    use crate::probe::Family;
    use std::net::IpAddr;
    use std::time::Duration;

    #[test]
    fn repair_comes_at_the_tenth_acknowledged_probe() {
        let mut sim = pair(always(1.0), outage("a", at(10, 500), at(20, 500)));
        sim.run_until(secs(12));
        let crtt = sim.crtt("a", Family::V4, v4(1));
        sim.run_until(secs(40));
        // Probes every second from 1 s; a's probes at 11..=20 get no reply.
        assert_eq!(
            sim.events,
            [
                (secs(15) + crtt, failure("a")),
                // Probes 21..=30 answered in 10 ms: the tenth at 30.010.
                (at(30, 10), repair("a")),
            ]
        );
        assert_eq!(sim.p.probe_state("a"), ProbeState::Ok);
    }

    /// A restart of ipmpd: the member its probes had failed stays failed
    /// through the quiet period until ten acknowledged probes.
    #[test]
    fn a_kept_failure_needs_ten_acknowledged_probes() {
        let mut sim = pair(always(1.0), outage("a", Duration::ZERO, secs(20)));
        sim.p.restore_failed("a", Duration::ZERO);
        sim.run_until(secs(20));
        assert_eq!(sim.events, []);
        assert_eq!(sim.p.probe_state("a"), ProbeState::Failed);
        // Probes from 20 s on are answered: the tenth at 29.010.
        sim.run_until(secs(40));
        assert_eq!(sim.events, [(at(29, 10), repair("a"))]);
    }

    /// Without targets a member is working, but a kept failure waits for
    /// the quiet period (its targets may still be found) before that.
    #[test]
    fn a_kept_failure_without_targets_waits_for_the_quiet_period() {
        let mut sim = Sim::new(always(1.0), Box::new(|_, _| vec![]));
        sim.add("a", &[Family::V4]);
        sim.p.restore_failed("a", Duration::ZERO);
        sim.run_until(QUIET - ms(1));
        assert_eq!(sim.events, []);
        sim.run_until(QUIET + secs(1));
        assert_eq!(sim.events, [(QUIET, repair("a"))]);
    }

    #[test]
    fn losses_are_ignored_during_the_startup_quiet_period() {
        // Nobody ever answers: losses from 2 s (no estimate: lost one
        // interval after sending), but the failure waits for 40 s.
        let mut sim = Sim::new(always(1.0), Box::new(|_, _| vec![]));
        sim.p.set_explicit_targets(vec![v4(1)]);
        sim.add("a", &[Family::V4]);
        sim.run_until(secs(39));
        assert!(sim.events.is_empty());
        assert_eq!(sim.p.probe_state("a"), ProbeState::Ok);
        sim.run_until(secs(41));
        assert_eq!(sim.events, [(secs(40), failure("a"))]);
    }

    #[test]
    fn a_member_that_starts_probing_later_gets_its_own_quiet_period() {
        // Added at 0 s, it starts probing (its interface appears) at 30 s:
        // its losses count only from 70 s.
        let mut sim = Sim::new(always(1.0), Box::new(|_, _| vec![]));
        sim.p.set_explicit_targets(vec![v4(1)]);
        sim.add("a", &[Family::V4]);
        sim.run_until(secs(30));
        sim.p.start_quiet("a", secs(30));
        sim.run_until(secs(69));
        assert!(sim.events.is_empty());
        sim.run_until(secs(71));
        assert_eq!(sim.events, [(secs(70), failure("a"))]);
    }

    #[test]
    fn a_reloaded_quiet_period_applies_to_members_added_after_it() {
        let mut sim = Sim::new(always(1.0), Box::new(|_, _| vec![]));
        sim.p.set_explicit_targets(vec![v4(1)]);
        sim.p.set_startup_quiet(secs(3));
        sim.add("a", &[Family::V4]);
        sim.run_until(secs(10));
        // Losses from 2 s, one a second: the fifth at 6 s, past the 3 s.
        assert_eq!(sim.events, [(secs(6), failure("a"))]);
    }

    #[test]
    fn the_first_acknowledged_probe_ends_the_quiet_period() {
        // Only the first probe (at 1 s) is answered: CRTT 3 × 10 ms.
        let mut sim = Sim::new(
            always(1.0),
            Box::new(|t, p| {
                if t < secs(2) {
                    vec![(p.target, RTT)]
                } else {
                    vec![]
                }
            }),
        );
        sim.p.set_explicit_targets(vec![v4(1)]);
        sim.add("a", &[Family::V4]);
        sim.run_until(secs(10));
        // Probes 2..=6 lost 30 ms after sending.
        assert_eq!(sim.events, [(at(6, 30), failure("a"))]);
    }

    #[test]
    fn both_families_must_fail_and_either_repairs() {
        let mut sim = Sim::new(
            always(1.0),
            Box::new(|t, p| {
                let v4_down = t >= at(10, 500) && t < at(30, 500);
                let v6_down = t >= at(20, 500);
                let down = match p.family {
                    Family::V4 => v4_down,
                    Family::V6 => v6_down,
                };
                if p.member == "a" && down {
                    vec![]
                } else {
                    vec![(p.target, RTT)]
                }
            }),
        );
        sim.p.set_explicit_targets(vec![v4(1), ll(1)]);
        sim.add("a", &[Family::V4, Family::V6]);
        sim.add("b", &[Family::V4]);
        sim.run_until(secs(21));
        // IPv4 alone has lost its probes since 11 s: not enough.
        assert!(sim.events.is_empty());
        let crtt6 = sim.crtt("a", Family::V6, ll(1));
        sim.run_until(secs(45));
        assert_eq!(
            sim.events,
            [
                // IPv6 probes 21..=25 lost too.
                (secs(25) + crtt6, failure("a")),
                // IPv4 answers again from 31 s: ten of them repair, though
                // IPv6 still fails.
                (at(40, 10), repair("a")),
            ]
        );
    }

    #[test]
    fn a_group_failure_fails_every_member_and_flushes_host_targets() {
        // Hosts .10 and .11 answer discovery in 5 ms and probes in 10 ms,
        // except between 10.5 s and 30.5 s, when nothing answers at all.
        let mut sim = Sim::new(
            always(1.0),
            Box::new(|t, p| {
                if t >= at(10, 500) && t < at(30, 500) {
                    vec![]
                } else if p.kind == ProbeKind::TargetDiscovery {
                    vec![(v4(10), ms(5)), (v4(11), ms(5))]
                } else {
                    vec![(p.target, RTT)]
                }
            }),
        );
        sim.add("a", &[Family::V4]);
        sim.add("b", &[Family::V4]);
        sim.run_until(secs(12));
        assert_eq!(sim.targets("a", Family::V4), [v4(10), v4(11)]);
        assert_eq!(sim.targets("b", Family::V4), [v4(10), v4(11)]);
        // Discovery at 1 s, then .10 and .11 in turn: 15 s goes to .11.
        let crtt = sim.crtt("a", Family::V4, v4(11));
        sim.run_until(secs(30));
        // Both lose 11..=15 at the same moments: nobody has shown life
        // since a's first loss, so the whole group has failed.
        assert_eq!(
            sim.events,
            [
                (secs(15) + crtt, failure("a")),
                (secs(15) + crtt, failure("b"))
            ]
        );
        // The hosts went; without targets they still wait for the probes.
        for m in ["a", "b"] {
            let view = sim.p.view(m, Family::V4).unwrap();
            assert_eq!((view.mode, view.targets.len()), (ProbeMode::Multicast, 0));
            assert_eq!(sim.p.probe_state(m), ProbeState::Failed);
        }
        let discovery = sim.probes("a", ProbeKind::TargetDiscovery);
        assert_eq!(discovery.last().unwrap().0, secs(30));
        assert_eq!(
            discovery.last().unwrap().1.target,
            "224.0.0.1".parse::<IpAddr>().unwrap()
        );
        // The hosts are back: found again at 31 s, probed from 32 s, ten
        // acknowledged probes repair both.
        sim.run_until(secs(50));
        assert_eq!(
            sim.events[2..],
            [(at(41, 10), repair("a")), (at(41, 10), repair("b"))]
        );
    }

    #[test]
    fn a_dead_host_is_replaced_through_discovery() {
        // Hosts .21 .22 .23; .22 stops answering at 10.5 s, when .24
        // starts answering discovery.
        let mut sim = Sim::new(
            always(1.0),
            Box::new(|t, p| {
                let late = t >= at(10, 500);
                match p.kind {
                    ProbeKind::TargetDiscovery if late => {
                        vec![(v4(21), ms(1)), (v4(23), ms(3)), (v4(24), ms(4))]
                    }
                    ProbeKind::TargetDiscovery => {
                        vec![(v4(21), ms(1)), (v4(22), ms(2)), (v4(23), ms(3))]
                    }
                    _ if late && p.target == v4(22) => vec![],
                    _ => vec![(p.target, RTT)],
                }
            }),
        );
        sim.add("a", &[Family::V4]);
        sim.run_until(secs(10));
        assert_eq!(sim.targets("a", Family::V4), [v4(21), v4(22), v4(23)]);
        let crtt = sim.crtt("a", Family::V4, v4(22));
        sim.run_until(secs(30));
        // .22 got the probes at 3, 6, 9, ...: 12, 15, 18, 21 and 24 are lost
        // while the others answer. At the fifth loss it is deleted and a
        // discovery probe goes out at once.
        let dead = secs(24) + crtt;
        let discovery: Vec<Duration> = sim
            .probes("a", ProbeKind::TargetDiscovery)
            .iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(discovery, [secs(1), dead]);
        assert_eq!(sim.targets("a", Family::V4), [v4(21), v4(23), v4(24)]);
        assert!(sim.events.is_empty());
        assert_eq!(sim.p.probe_state("a"), ProbeState::Ok);
    }

    #[test]
    fn a_dead_router_is_kept_and_retried_after_two_minutes() {
        // Three routers; .2 does not answer between 10.5 s and 60 s.
        let mut sim = Sim::new(
            always(1.0),
            Box::new(|t, p| {
                if p.target == v4(2) && t >= at(10, 500) && t < secs(60) {
                    vec![]
                } else {
                    vec![(p.target, RTT)]
                }
            }),
        );
        sim.add("a", &[Family::V4]);
        sim.p
            .set_routers("a", Family::V4, vec![v4(1), v4(2), v4(3)]);
        sim.run_until(secs(10));
        let crtt = sim.crtt("a", Family::V4, v4(2));
        sim.run_until(secs(30));
        // Probes to .2 at 2, 5, 8, ...: 11, 14, 17, 20, 23 lost.
        let dead = secs(23) + crtt;
        let m = &sim.p.members[0];
        let t = m.instances[0].targets.get(v4(2)).unwrap();
        assert_eq!((t.status, t.since), (TargetStatus::Dead, dead));
        assert_eq!(sim.targets("a", Family::V4), [v4(1), v4(3)]);
        assert_eq!(sim.p.view("a", Family::V4).unwrap().mode, ProbeMode::Routes);
        sim.run_until(secs(200));
        // Dead to slow after a minute, slow to unused after another, then
        // probed again on the next pass.
        let retried: Vec<Duration> = sim
            .fd_probes("a")
            .iter()
            .filter(|p| p.1 == v4(2) && p.0 > dead)
            .map(|p| p.0)
            .collect();
        assert!(
            retried[0] > dead + secs(120) && retried[0] < dead + secs(130),
            "{retried:?}"
        );
        assert_eq!(sim.targets("a", Family::V4), [v4(1), v4(2), v4(3)]);
        assert!(sim.events.is_empty());
    }

    #[test]
    fn a_member_failed_by_probes_is_repaired_when_its_targets_vanish() {
        let mut sim = pair(always(1.0), outage("a", at(10, 500), secs(1000)));
        sim.run_until(secs(20));
        assert_eq!(sim.events.len(), 1);
        sim.p.set_explicit_targets(vec![]);
        sim.settle();
        assert_eq!(sim.events[1], (secs(20), repair("a")));
        assert_eq!(sim.p.probe_state("a"), ProbeState::Unknown);
        assert_eq!(sim.p.probe_state("b"), ProbeState::Unknown);
    }

    #[test]
    fn a_link_only_member_shows_life_by_its_link() {
        // b has no test address: a's failure is an interface failure while
        // b's link is up, a group failure once it is down.
        let mut sim = Sim::new(always(1.0), outage("a", at(10, 500), secs(1000)));
        sim.p.set_explicit_targets(vec![v4(1)]);
        sim.add("a", &[Family::V4]);
        sim.add("b", &[]);
        sim.run_until(secs(30));
        assert_eq!(sim.events.len(), 1);
        assert_eq!(sim.events[0].1, failure("a"));
        assert!(!sim.p.group_failed);

        let mut sim = Sim::new(always(1.0), outage("a", at(10, 500), secs(1000)));
        sim.p.set_explicit_targets(vec![v4(1)]);
        sim.add("a", &[Family::V4]);
        sim.add("b", &[]);
        sim.p.link_changed("b", false, secs(5));
        sim.run_until(secs(30));
        assert_eq!(sim.events.len(), 1);
        assert!(sim.p.group_failed);
        // b's link comes back: the group works again.
        sim.p.link_changed("b", true, secs(30));
        assert!(!sim.p.group_failed);
    }

    #[test]
    fn without_targets_a_member_is_unknown_and_treated_as_working() {
        let mut sim = Sim::new(always(1.0), Box::new(|_, _| vec![]));
        sim.add("a", &[Family::V4]);
        sim.add("b", &[]);
        sim.run_until(secs(5));
        assert_eq!(sim.p.probe_state("a"), ProbeState::Unknown);
        assert_eq!(sim.p.probe_state("b"), ProbeState::Disabled);
        assert_eq!(sim.p.view("b", Family::V4), None);
        assert!(sim.fd_probes("a").is_empty());
        assert_eq!(sim.probes("a", ProbeKind::TargetDiscovery).len(), 5);
        // Link down, then up: repaired at once, nothing to wait for.
        sim.p.link_changed("a", false, at(5, 500));
        sim.run_until(at(5, 500));
        assert_eq!(sim.p.probe_state("a"), ProbeState::Failed);
        sim.run_until(secs(7));
        assert_eq!(sim.probes("a", ProbeKind::TargetDiscovery).len(), 5);
        sim.p.link_changed("a", true, secs(7));
        assert_eq!(sim.p.next_deadline(), Some(secs(7)));
        sim.settle();
        assert_eq!(sim.events, [(secs(7), repair("a"))]);
        assert_eq!(sim.p.probe_state("a"), ProbeState::Unknown);
    }
}
