//! The probe timer (in.mpathd's `phyint_inst_timer` in `mpd_probe.c`):
//! what each tick of an instance sends, and when the next one comes.
use std::net::IpAddr;
use std::time::Duration;

use super::super::{MAX_RANDOM_FACTOR, MIN_RANDOM_FACTOR};
use super::{fraction, GroupProber, InstanceRef, ProbeKind, ProbeToSend};

impl GroupProber {
    pub(super) fn send(&mut self, at: InstanceRef, seq: u16, target: IpAddr, kind: ProbeKind) {
        let m = &self.members[at.member];
        self.sends.push(ProbeToSend {
            member: m.name.clone(),
            family: m.instances[at.instance].family,
            seq,
            target,
            kind,
        });
    }

    pub(super) fn queue_discovery(&mut self, at: InstanceRef) {
        let m = &self.members[at.member];
        let family = m.instances[at.instance].family;
        let probe = ProbeToSend {
            member: m.name.clone(),
            family,
            seq: 0,
            target: family.all_nodes(),
            kind: ProbeKind::TargetDiscovery,
        };
        if !self.sends.contains(&probe) {
            self.sends.push(probe);
        }
    }

    /// One tick of an instance (in.mpathd's `phyint_inst_timer`).
    pub(super) fn tick(&mut self, at: InstanceRef, now: Duration, random: &mut dyn FnMut() -> f64) {
        let (user, interval) = (self.fdt.user_interval, self.fdt.interval);
        let jitter = user.mul_f64(
            MIN_RANDOM_FACTOR + (MAX_RANDOM_FACTOR - MIN_RANDOM_FACTOR) * fraction(random),
        );
        let i = self.instance_mut(at);
        i.schedule(now, user, jitter);
        if i.targets.active_count() == 0 {
            i.fd_base = i.base;
            self.queue_discovery(at);
            return;
        }
        if user != interval && i.next_tick < i.fd_base {
            // The FDT is raised and the next failure-detection probe is not
            // due before the next tick: keep the RTT estimates fresh.
            if let Some(target) = i.targets.next_rtt_target(now) {
                self.send(at, 0, target, ProbeKind::RttOnly);
            }
            return;
        }
        i.schedule_fd(now, user, interval);
        if self.give_up_outstanding(at, now) {
            self.check_failure(at, now);
        }
        self.probe_next_target(at, now);
    }

    /// Sends the failure-detection probe to the next target (round-robin)
    /// and, when that is the only host target, a discovery probe too.
    pub(super) fn probe_next_target(&mut self, at: InstanceRef, now: Duration) {
        let i = self.instance_mut(at);
        let Some(target) = i.targets.next_target(now) else {
            // A group failure just flushed the hosts.
            self.queue_discovery(at);
            return;
        };
        let seq = i.record_probe(target, now);
        let lone_host = !i.targets.are_routers() && i.targets.active_count() == 1;
        self.send(at, seq, target, ProbeKind::FailureDetection);
        if lone_host {
            // A single host target gives no resilience: look for more.
            self.queue_discovery(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::history::Fate;
    use super::super::sim::*;
    use super::super::*;
    use crate::model::ProbeState;
    use crate::probe::targets::SampleKind;
    use crate::probe::Family;
    use std::time::Duration;

    #[test]
    fn probes_follow_the_random_schedule_and_failure_comes_at_the_fifth_loss() {
        let mut sim = pair(
            cycle(vec![0.3, 0.6, 0.0, 1.0, 0.8, 0.45, 0.1]),
            outage("a", at(10, 500), secs(1000)),
        );
        sim.run_until(secs(12));
        // The last acknowledged probe of a was before the outage: its
        // target's CRTT stays as it is until the failure.
        let crtt = sim.crtt("a", Family::V4, v4(1));
        sim.run_until(secs(30));
        for member in ["a", "b"] {
            let times: Vec<Duration> = sim.fd_probes(member).iter().map(|p| p.0).collect();
            // Start within one interval, then each probe 0.5 to 1 interval
            // after its base time, the base times one interval apart.
            assert!(times[0] <= secs(1));
            for (k, t) in times.iter().enumerate().skip(1) {
                let base = times[0] + secs(k as u64 - 1);
                assert!(
                    *t >= base + ms(500) && *t <= base + secs(1),
                    "{member} {k} {t:?}"
                );
            }
            // One target, probed in sequence from 1.
            let seqs: Vec<u16> = sim.fd_probes(member).iter().map(|p| p.2).collect();
            assert_eq!(seqs, (1..=seqs.len() as u16).collect::<Vec<_>>());
        }
        let lost: Vec<Duration> = sim
            .fd_probes("a")
            .iter()
            .map(|p| p.0)
            .filter(|t| *t >= at(10, 500))
            .collect();
        // Lost at the target's CRTT after sending; failed at the fifth.
        assert_eq!(sim.events, [(lost[4] + crtt, failure("a"))]);
        // b kept answering: an interface failure, not a group failure.
        assert_eq!(sim.p.probe_state("a"), ProbeState::Failed);
        assert_eq!(sim.p.probe_state("b"), ProbeState::Ok);
        // a keeps probing its target, to see the repair.
        assert_eq!(sim.targets("a", Family::V4), [v4(1)]);
    }

    #[test]
    fn a_single_host_target_keeps_discovery_going() {
        let mut sim = Sim::new(
            always(1.0),
            Box::new(|_, p| match p.kind {
                ProbeKind::TargetDiscovery => vec![(v4(21), ms(1))],
                _ => vec![(p.target, RTT)],
            }),
        );
        sim.add("a", &[Family::V4]);
        sim.run_until(secs(5));
        // Every failure-detection probe comes with a discovery probe.
        let kinds: Vec<(Duration, ProbeKind)> =
            sim.sent.iter().map(|(t, p)| (*t, p.kind)).collect();
        assert_eq!(
            kinds,
            [
                (secs(1), ProbeKind::TargetDiscovery),
                (secs(2), ProbeKind::FailureDetection),
                (secs(2), ProbeKind::TargetDiscovery),
                (secs(3), ProbeKind::FailureDetection),
                (secs(3), ProbeKind::TargetDiscovery),
                (secs(4), ProbeKind::FailureDetection),
                (secs(4), ProbeKind::TargetDiscovery),
                (secs(5), ProbeKind::FailureDetection),
                (secs(5), ProbeKind::TargetDiscovery),
            ]
        );
    }

    #[test]
    fn at_most_two_probes_are_outstanding() {
        let mut sim = Sim::new(always(1.0), Box::new(|_, _| vec![]));
        sim.p.set_explicit_targets(vec![v4(1)]);
        sim.add("a", &[Family::V4]);
        // A CRTT of 2.5 s (as after a raise): probes 1 s apart would pile up.
        let i = &mut sim.p.members[0].instances[0];
        i.targets.get_mut(v4(1)).unwrap().rtt.sample(
            ms(833),
            secs(10),
            SampleKind::FailureDetection,
        );
        sim.run_until(at(3, 1));
        let fates: Vec<Fate> = sim.p.members[0].instances[0].history.fates();
        // The probe of 1 s is given up when the one of 3 s goes out.
        assert_eq!(fates, [Fate::Lost(secs(3)), Fate::Pending, Fate::Pending]);
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        let mut sim = pair(always(1.0), answering());
        sim.p.members[0].instances[0].snxt = 65534;
        sim.run_until(secs(60));
        let seqs: Vec<u16> = sim.fd_probes("a").iter().map(|p| p.2).take(4).collect();
        assert_eq!(seqs, [65534, 65535, 0, 1]);
        let reports = sim.p.drain_reports();
        assert!(reports
            .iter()
            .all(|r| matches!(r.outcome, ProbeOutcome::Acked { .. })));
        // Sent at 1..=60 s, the last still awaiting its reply.
        assert_eq!(reports.iter().filter(|r| r.member == "a").count(), 59);
        assert!(sim.events.is_empty());
        // 65534 went out 60 probes ago, beyond the 52 remembered: its reply
        // is out of window even though 65534 never came round again.
        let last = sim.fd_probes("a").last().unwrap().2;
        assert_eq!(last, 57);
        sim.p.on_reply(
            sim.now,
            &echo(
                "a",
                Family::V4,
                65534,
                ProbeKind::FailureDetection,
                v4(1),
                RTT,
            ),
        );
        assert!(sim.p.drain_reports().is_empty());
    }
}
