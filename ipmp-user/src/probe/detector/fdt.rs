//! The adaptive failure detection time of a group (in.mpathd's
//! `incoming_echo_reply`, `incoming_rtt_reply` and
//! `check_pg_crtt_improved` in `mpd_probe.c`): raised when the targets'
//! RTTs cannot meet the configured one, lowered again, not below it, once
//! they allow.
use std::net::IpAddr;
use std::time::Duration;

use super::super::targets::{SampleKind, SetAside};
use super::super::{FDT_SETTLING_TIME, LOWER_FDT_TRIGGER, NEXT_FDT_MULTIPLE, PROBES_PER_FDT};
use super::{GroupProber, InstanceRef, ProberEvent};

/// The group's failure detection time and the probe intervals it makes.
#[derive(Debug)]
pub(super) struct Fdt {
    /// The FDT asked for (`user_failure_detection_time`).
    pub(super) configured: Duration,
    /// configured / [`PROBES_PER_FDT`] (`user_probe_interval`): the tick
    /// interval, always.
    pub(super) user_interval: Duration,
    /// The group's FDT, raised above the configured one when needed.
    pub(super) current: Duration,
    /// current / [`PROBES_PER_FDT`]: the failure-detection probe interval.
    pub(super) interval: Duration,
    last_raise: Option<Duration>,
}

impl Fdt {
    /// The configured FDT, not raised.
    pub(super) fn new(configured: Duration) -> Self {
        let user_interval = configured / PROBES_PER_FDT;
        Fdt {
            configured,
            user_interval,
            current: configured,
            interval: user_interval,
            last_raise: None,
        }
    }

    /// Raised at `now` to [`NEXT_FDT_MULTIPLE`] × `crtt` per interval.
    fn raise(&mut self, crtt: Duration, now: Duration) {
        self.interval = crtt.saturating_mul(NEXT_FDT_MULTIPLE);
        self.current = self.interval.saturating_mul(PROBES_PER_FDT);
        self.last_raise = Some(now);
    }

    /// A CRTT this low allows a lower FDT at `now`, as far as this target
    /// goes: raised, and settled since.
    fn may_lower(&self, crtt: Duration, now: Duration) -> bool {
        crtt < self.interval / LOWER_FDT_TRIGGER
            && self.configured < self.current
            && self
                .last_raise
                .is_some_and(|raised| raised + FDT_SETTLING_TIME < now)
    }

    /// Divided by [`NEXT_FDT_MULTIPLE`], not below the configured FDT.
    /// Returns whether it is back at the configured one.
    fn lower(&mut self) -> bool {
        self.current = (self.current / NEXT_FDT_MULTIPLE).max(self.configured);
        if self.current == self.configured {
            // Exactly the configured interval again (no rounding), and
            // failure-detection probes back on every tick.
            self.interval = self.user_interval;
            true
        } else {
            self.interval = self.current / PROBES_PER_FDT;
            false
        }
    }
}

impl GroupProber {
    /// After an RTT sample of `target`: set it aside as slow, raise the
    /// FDT, or lower it (in.mpathd's `incoming_echo_reply` and
    /// `incoming_rtt_reply`).
    pub(super) fn adapt(
        &mut self,
        at: InstanceRef,
        target: IpAddr,
        now: Duration,
        kind: SampleKind,
    ) {
        let interval = self.fdt.interval;
        let i = self.instance(at);
        let family = i.family;
        let Some(crtt) = i.targets.get(target).and_then(|t| t.rtt.crtt()) else {
            return;
        };
        if kind == SampleKind::FailureDetection && crtt > interval {
            if i.targets.is_exception(target, interval) {
                // One slow target among fast ones: avoid it rather than
                // slow the whole group down.
                if self.instance_mut(at).targets.declare_slow(target, now) == SetAside::Deleted {
                    self.target_deleted(at, target);
                }
                return;
            }
            self.fdt.raise(crtt, now);
            self.events.push(ProberEvent::FdtRaised {
                group: self.group.clone(),
                family,
                member: self.members[at.member].name.clone(),
                requested_fdt: self.fdt.configured,
                new_fdt: self.fdt.current,
            });
        } else if self.fdt.may_lower(crtt, now) && self.crtt_improved() {
            if self.fdt.lower() {
                self.realign_fd_bases();
            }
            self.events.push(ProberEvent::FdtImproved {
                group: self.group.clone(),
                family,
                member: self.members[at.member].name.clone(),
                new_fdt: self.fdt.current,
            });
        }
    }

    /// Every working member's active targets are fast enough for a lower
    /// FDT (in.mpathd's `check_pg_crtt_improved`).
    fn crtt_improved(&self) -> bool {
        self.members.iter().all(|m| {
            !m.ok
                || m.instances.iter().all(|i| {
                    i.targets.active_count() == 0 || i.targets.crtt_improved(self.fdt.interval)
                })
        })
    }

    /// in.mpathd's `reset_snxt_basetimes`.
    pub(super) fn realign_fd_bases(&mut self) {
        for m in &mut self.members {
            for i in &mut m.instances {
                i.fd_base = i.base;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::sim::*;
    use super::super::*;
    use crate::probe::targets::{SampleKind, TargetStatus};
    use crate::probe::{Family, FDT_SETTLING_TIME};
    use std::time::Duration;

    #[test]
    fn an_rtt_spike_is_held_back_once() {
        // a's probe at 20 s takes 900 ms: alone it would push the CRTT
        // above the interval.
        let mut sim = pair(
            always(1.0),
            Box::new(|t, p| {
                let spike = p.member == "a" && (t == secs(20) || t == secs(30) || t == secs(31));
                vec![(p.target, if spike { ms(900) } else { RTT })]
            }),
        );
        sim.run_until(at(19, 500));
        let before = sim.estimator("a", Family::V4, v4(1));
        sim.run_until(at(20, 950));
        // Held back: the estimate has not moved.
        let held = sim.estimator("a", Family::V4, v4(1));
        assert_eq!(held.crtt(), before.crtt());
        assert_eq!(held.held_back(), 1);
        sim.run_until(at(21, 50));
        // A normal reply next: the spike is dropped, the normal one applied.
        let mut expected = before.clone();
        expected.sample(RTT, secs(1), SampleKind::FailureDetection);
        let now = sim.estimator("a", Family::V4, v4(1));
        assert_eq!(
            (now.crtt(), now.average(), now.deviation(), now.held_back()),
            (expected.crtt(), expected.average(), expected.deviation(), 0)
        );
        assert!(sim.events.is_empty());

        // Two spikes in a row (30 s and 31 s): both count, and the CRTT
        // exceeds the interval with a single target: the FDT is raised to
        // 7 intervals of 2 × CRTT, when the second reply comes.
        sim.run_until(at(29, 500));
        let mut expected = sim.estimator("a", Family::V4, v4(1));
        expected.sample(ms(900), secs(1), SampleKind::FailureDetection);
        expected.sample(ms(900), secs(1), SampleKind::FailureDetection);
        let crtt = expected.crtt().unwrap();
        assert!(crtt > secs(1));
        sim.run_until(secs(32));
        let new_fdt = crtt * 2 * 7;
        assert_eq!(
            sim.events,
            [(
                at(31, 900),
                ProberEvent::FdtRaised {
                    group: "g".into(),
                    family: Family::V4,
                    member: "a".into(),
                    requested_fdt: FDT,
                    new_fdt,
                }
            )]
        );
        assert_eq!(sim.p.fdt(), new_fdt);
        assert_eq!(
            sim.events[0].1.to_string(),
            format!(
                "Cannot meet requested failure detection time of 7000 ms on (inet a) new failure \
                 detection time for group \"g\" is {} ms",
                new_fdt.as_millis()
            )
        );
    }

    #[test]
    fn a_raised_fdt_sends_rtt_only_probes_and_comes_down_after_a_minute() {
        let mut sim = pair(
            always(1.0),
            Box::new(|t, p| {
                let spike = p.member == "a" && (t == secs(10) || t == secs(11));
                vec![(p.target, if spike { ms(900) } else { RTT })]
            }),
        );
        sim.run_until(secs(12));
        let raised = at(11, 900);
        let events: Vec<Duration> = sim.events.iter().map(|e| e.0).collect();
        assert_eq!(events, [raised]);
        let high = sim.p.fdt();
        let high_interval = high / 7;
        sim.run_until(secs(200));

        // While raised, every member still ticks every configured interval:
        // failure-detection probes at the raised interval, RTT-only probes
        // (sequence 0) in between.
        let ticks: Vec<(Duration, ProbeKind, u16)> = sim
            .sent
            .iter()
            .filter(|(t, p)| p.member == "a" && *t > raised && *t < raised + secs(60))
            .map(|(t, p)| (*t, p.kind, p.seq))
            .collect();
        for w in ticks.windows(2) {
            assert_eq!(w[1].0 - w[0].0, secs(1));
        }
        let fd: Vec<Duration> = ticks
            .iter()
            .filter(|t| t.1 == ProbeKind::FailureDetection)
            .map(|t| t.0)
            .collect();
        assert!(fd.len() >= 10);
        for w in fd.windows(2) {
            assert!(w[1] - w[0] >= high_interval - secs(1), "{w:?}");
            assert!(w[1] - w[0] <= high_interval + secs(1), "{w:?}");
        }
        assert!(ticks
            .iter()
            .filter(|t| t.1 == ProbeKind::RttOnly)
            .all(|t| t.2 == 0));
        assert!(ticks.iter().filter(|t| t.1 == ProbeKind::RttOnly).count() >= 30);

        // Lowered on the first RTT sample more than 60 s after the raise
        // (all targets are fast again by then), halving each time, down to
        // the configured FDT.
        let first_sample = sim
            .replies
            .iter()
            .map(|r| r.0)
            .find(|t| *t > raised + FDT_SETTLING_TIME)
            .unwrap();
        let improved: Vec<(Duration, Duration)> = sim
            .events
            .iter()
            .filter_map(|(t, e)| match e {
                ProberEvent::FdtImproved { new_fdt, .. } => Some((*t, *new_fdt)),
                _ => None,
            })
            .collect();
        assert_eq!(improved[0], (first_sample, high / 2));
        assert_eq!(improved.len(), 2);
        assert_eq!(improved[1].1, FDT);
        assert_eq!(sim.p.fdt(), FDT);
        let (_, e) = &sim.events[2];
        let member = match e {
            ProberEvent::FdtImproved { member, .. } => member.clone(),
            _ => unreachable!(),
        };
        assert_eq!(
            e.to_string(),
            format!("Improved failure detection time 7000 ms on (inet {member}) for group \"g\"")
        );
        // Back at the configured interval: no RTT-only probe any more.
        let back = improved[1].0;
        assert!(sim
            .sent
            .iter()
            .filter(|(t, _)| *t > back + secs(1))
            .all(|(_, p)| p.kind == ProbeKind::FailureDetection));
        assert_eq!(sim.events.len(), 3);
    }

    #[test]
    fn a_slow_target_is_set_aside_instead_of_raising_the_fdt() {
        // Four routers; .4 answers in 900 ms, the others in 10 ms.
        let mut sim = Sim::new(
            always(1.0),
            Box::new(|_, p| {
                let rtt = if p.target == v4(4) { ms(900) } else { RTT };
                vec![(p.target, rtt)]
            }),
        );
        sim.add("a", &[Family::V4]);
        sim.p
            .set_routers("a", Family::V4, (1..=4).map(v4).collect());
        sim.run_until(at(8, 800));
        // The first 900 ms sample (probe at 4 s) was held back.
        assert_eq!(
            sim.targets("a", Family::V4),
            (1..=4).map(v4).collect::<Vec<_>>()
        );
        sim.run_until(secs(9));
        // The second (probe at 8 s, answered at 8.9 s) confirms it: slow.
        assert_eq!(
            sim.targets("a", Family::V4),
            (1..=3).map(v4).collect::<Vec<_>>()
        );
        let t = sim.p.members[0].instances[0]
            .targets
            .get(v4(4))
            .unwrap()
            .clone();
        assert_eq!((t.status, t.since), (TargetStatus::Slow, at(8, 900)));
        assert_eq!(sim.p.fdt(), FDT);
        assert!(sim.events.is_empty());
    }
}
