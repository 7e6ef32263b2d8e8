//! The probe targets of one member in one address family, and their
//! round-trip estimators (in.mpathd's `target_*` functions in
//! `mpd_tables.c` and `compute_crtt`/`pi_set_crtt` in `mpd_probe.c`, which
//! follow Jacobson and Karels, SIGCOMM '88, Appendix A).
//!
//! A list holds either *router-class* targets (explicit targets from the
//! configuration, first, then routers: next hops inside the test prefix)
//! or *hosts* found by multicast discovery, never both: routers always win,
//! and hosts are only a fallback (in.mpathd's `pii_targets_are_routers`).
//!
//! At most [`MAX_PROBE_TARGETS`] targets are active and probed round-robin.
//! A router-class target that stops answering is kept but set aside as
//! *dead*, one that answers too slowly as *slow*; a walk of the list steps
//! them back (dead → slow → unused → active) once [`TARGET_RECOVERY_TIME`]
//! has passed at each step. A host in the same situation is simply deleted,
//! and discovery finds another. When no target is active any more, the best
//! [`MIN_PROBE_TARGETS`] remaining ones are reactivated.
use std::net::IpAddr;
use std::time::Duration;

use super::{
    EXCEPTION_FACTOR, LOWER_FDT_TRIGGER, MAX_DEFERRED_RTT, MAX_PROBE_TARGETS, MIN_PROBE_TARGETS,
    PROBE_HISTORY, TARGET_RECOVERY_TIME,
};

/// in.mpathd's "no estimate yet" value of the scaled average.
const NO_ESTIMATE: i64 = -1;

/// Which probe a round-trip sample comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleKind {
    /// A failure-detection probe: moves the estimate both ways.
    FailureDetection,
    /// An RTT-only probe: may only lower the estimate (in.mpathd: several
    /// outstanding probes would otherwise weigh an increase many times).
    RttOnly,
}

/// What a sample did to the estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleEffect {
    /// The estimate moved (possibly by a held sample too).
    Applied,
    /// Held back: it alone would have pushed the CRTT above the interval.
    HeldBack,
    /// Not used: bogus (longer than [`PROBE_HISTORY`] intervals), or an
    /// RTT-only sample that would not lower the estimate.
    Ignored,
}

/// Jacobson/Karels round-trip estimator of one target, in ns, exactly as
/// in.mpathd keeps it (SIGCOMM '88, Appendix A.2): `sa` is 8 × the average,
/// `sv` 4 × the mean deviation, and the conservative RTT is `sa/8 + sv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RttEstimator {
    sa: i64,
    sv: i64,
    crtt: Option<Duration>,
    /// Samples held back; the last slot takes the sample being judged.
    deferred: [i64; MAX_DEFERRED_RTT + 1],
    num_deferred: usize,
}

impl Default for RttEstimator {
    fn default() -> Self {
        RttEstimator::new()
    }
}

fn to_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn from_ns(ns: i64) -> Duration {
    Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

/// in.mpathd's `compute_crtt`: the new (sa, sv) and CRTT after sample `m`.
fn compute(sa: i64, sv: i64, m: i64) -> (i64, i64, Duration) {
    let (sa, sv) = if sa == NO_ESTIMATE {
        // The first sample: average m, deviation m/2.
        (m << 3, m << 1)
    } else {
        // sa/8 moves by 1/8 of the error, sv/4 by 1/4 of |error| - sv/4.
        let err = m - (sa >> 3);
        // The smoothed average is never negative.
        let sa = (sa + err).max(0);
        (sa, sv + err.abs() - (sv >> 2))
    };
    (sa, sv, from_ns((sa >> 3) + sv))
}

impl RttEstimator {
    /// No estimate yet.
    pub fn new() -> Self {
        RttEstimator {
            sa: NO_ESTIMATE,
            sv: 0,
            crtt: None,
            deferred: [0; MAX_DEFERRED_RTT + 1],
            num_deferred: 0,
        }
    }

    /// Forgets everything (in.mpathd's `reset_crtt_all`, on a failure).
    pub fn reset(&mut self) {
        *self = RttEstimator::new();
    }

    /// Conservative RTT, `sa/8 + sv`; `None` before the first sample.
    pub fn crtt(&self) -> Option<Duration> {
        self.crtt
    }

    /// Smoothed RTT, `sa/8` (ipmpstat -p RTTAVG).
    pub fn average(&self) -> Option<Duration> {
        (self.sa != NO_ESTIMATE).then(|| from_ns(self.sa >> 3))
    }

    /// Mean deviation, `sv/4` (ipmpstat -p RTTDEV).
    pub fn deviation(&self) -> Option<Duration> {
        (self.sa != NO_ESTIMATE).then(|| from_ns(self.sv >> 2))
    }

    /// Samples currently held back.
    pub fn held_back(&self) -> usize {
        self.num_deferred
    }

    /// Takes sample `m` given the group's probe interval (in.mpathd's
    /// `pi_set_crtt` plus the sanity check of `incoming_echo_reply`).
    pub fn sample(
        &mut self,
        m: Duration,
        probe_interval: Duration,
        kind: SampleKind,
    ) -> SampleEffect {
        // Longer than the whole history window: the reply would have been
        // out of window if it really took that long, so we were scheduled
        // late (in.mpathd: the system was hung or in the debugger).
        if m > probe_interval.saturating_mul(PROBE_HISTORY as u32) {
            return SampleEffect::Ignored;
        }
        let m = to_ns(m);
        self.deferred[self.num_deferred] = m;
        let (sa, sv, crtt) = compute(self.sa, self.sv, m);
        let fd = kind == SampleKind::FailureDetection;
        if fd && crtt > probe_interval {
            // A sample that alone would raise the probe interval is suspect:
            // hold it back once; a second one in a row means the path
            // really slowed down, and both are applied.
            if self.num_deferred == MAX_DEFERRED_RTT {
                for i in 0..=self.num_deferred {
                    let (sa, sv, crtt) = compute(self.sa, self.sv, self.deferred[i]);
                    (self.sa, self.sv, self.crtt) = (sa, sv, Some(crtt));
                }
                self.num_deferred = 0;
                return SampleEffect::Applied;
            }
            self.num_deferred += 1;
            return SampleEffect::HeldBack;
        }
        if fd || self.crtt.is_some_and(|old| crtt < old) {
            (self.sa, self.sv, self.crtt) = (sa, sv, Some(crtt));
            if fd {
                // Answered within the estimate again: the held sample was
                // a spike.
                self.num_deferred = 0;
            }
            return SampleEffect::Applied;
        }
        SampleEffect::Ignored
    }
}

/// Where a target comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetSource {
    /// `targets` in the group's configuration.
    Explicit,
    /// A next hop inside the member's test prefix (or an IPv6 link-local
    /// next hop): default, prefix and host routes.
    Router,
    /// Answered a multicast discovery probe.
    Host,
}

impl TargetSource {
    /// Explicit targets are treated like routers: kept when they stop
    /// answering, never displaced by hosts (Solaris administrators name
    /// manual targets with host routes, which in.mpathd sees as routers).
    pub fn is_router_class(self) -> bool {
        self != TargetSource::Host
    }
}

/// in.mpathd's `tg_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetStatus {
    /// Probed.
    Active,
    /// Known but not probed: enough targets are active.
    Unused,
    /// Answered too slowly while the others were fast.
    Slow,
    /// Lost [`super::NUM_PROBE_FAILS`] probes while the member was fine.
    Dead,
}

/// One target.
#[derive(Clone, Debug)]
pub struct Target {
    pub address: IpAddr,
    pub source: TargetSource,
    pub status: TargetStatus,
    /// When the status last changed to dead or slow (in.mpathd's
    /// `tg_latime`); meaningful only for those.
    pub since: Duration,
    pub rtt: RttEstimator,
}

impl Target {
    fn new(address: IpAddr, source: TargetSource, status: TargetStatus, now: Duration) -> Self {
        Target {
            address,
            source,
            status,
            since: now,
            rtt: RttEstimator::new(),
        }
    }

    /// Past its recovery time at `now` (in.mpathd: strictly later).
    fn recovered(&self, now: Duration) -> bool {
        self.since + TARGET_RECOVERY_TIME < now
    }
}

/// What became of a target set aside as dead or slow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetAside {
    /// A router-class target: kept with its new status.
    Kept,
    /// A host: deleted; discovery should look for another.
    Deleted,
    /// No such target.
    Unknown,
}

/// The targets of one member in one family, in probing order.
#[derive(Clone, Debug, Default)]
pub struct TargetList {
    targets: Vec<Target>,
    /// The target of the last failure-detection probe: the next goes to
    /// the following active one.
    last_fd: Option<IpAddr>,
    /// The target of the last RTT-only probe (reset to `last_fd` by every
    /// failure-detection probe, as in.mpathd keeps the two in step).
    last_rtt: Option<IpAddr>,
}

impl TargetList {
    pub fn new() -> Self {
        TargetList::default()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Every target, active or not, in probing order.
    pub fn iter(&self) -> impl Iterator<Item = &Target> {
        self.targets.iter()
    }

    /// The active targets, in probing order.
    pub fn active(&self) -> impl Iterator<Item = &Target> {
        self.targets
            .iter()
            .filter(|t| t.status == TargetStatus::Active)
    }

    pub fn active_count(&self) -> usize {
        self.active().count()
    }

    pub fn get(&self, address: IpAddr) -> Option<&Target> {
        self.targets.iter().find(|t| t.address == address)
    }

    pub fn get_mut(&mut self, address: IpAddr) -> Option<&mut Target> {
        self.targets.iter_mut().find(|t| t.address == address)
    }

    /// The list holds router-class targets (and so no host).
    pub fn are_routers(&self) -> bool {
        self.targets.iter().any(|t| t.source.is_router_class())
    }

    /// Replaces the router-class targets by `explicit` then `routers`
    /// (duplicates dropped). Targets still wanted keep their status and
    /// estimate; when any router-class target remains, every host goes
    /// (routers win). Returns the addresses no longer in the list.
    pub fn set_router_targets(
        &mut self,
        explicit: &[IpAddr],
        routers: &[IpAddr],
        now: Duration,
    ) -> Vec<IpAddr> {
        let mut wanted: Vec<(IpAddr, TargetSource)> = Vec::new();
        let tagged = explicit
            .iter()
            .map(|a| (*a, TargetSource::Explicit))
            .chain(routers.iter().map(|a| (*a, TargetSource::Router)));
        for (address, source) in tagged {
            if !wanted.iter().any(|(w, _)| *w == address) {
                wanted.push((address, source));
            }
        }
        let before: Vec<IpAddr> = self.targets.iter().map(|t| t.address).collect();
        let mut old = std::mem::take(&mut self.targets);
        if wanted.is_empty() {
            old.retain(|t| !t.source.is_router_class());
            self.targets = old;
        } else {
            for (address, source) in wanted {
                let kept = old
                    .iter()
                    .position(|t| t.address == address && t.source.is_router_class());
                let target = match kept {
                    Some(i) => {
                        let mut t = old.remove(i);
                        t.source = source;
                        t
                    }
                    // A host of the same address becomes a router anew, as
                    // in.mpathd recreates it.
                    None => Target::new(address, source, TargetStatus::Unused, now),
                };
                self.targets.push(target);
            }
            // Explicit targets first: the first MAX_PROBE_TARGETS usable
            // ones are active; dead and slow ones wait for their recovery.
            let mut active = 0;
            for t in &mut self.targets {
                if matches!(t.status, TargetStatus::Active | TargetStatus::Unused) {
                    t.status = if active < MAX_PROBE_TARGETS {
                        active += 1;
                        TargetStatus::Active
                    } else {
                        TargetStatus::Unused
                    };
                }
            }
        }
        self.settle(now);
        before
            .into_iter()
            .filter(|a| self.get(*a).is_none())
            .collect()
    }

    /// Adds a host found by discovery: only while there is no router-class
    /// target and fewer than [`MAX_PROBE_TARGETS`] hosts. Returns whether
    /// it was added.
    pub fn add_host(&mut self, address: IpAddr, now: Duration) -> bool {
        if self.are_routers()
            || self.targets.len() >= MAX_PROBE_TARGETS
            || self.get(address).is_some()
        {
            return false;
        }
        self.targets.push(Target::new(
            address,
            TargetSource::Host,
            TargetStatus::Active,
            now,
        ));
        true
    }

    /// Deletes every host (a group failure: they are found again by
    /// discovery if they are still there). Returns their addresses.
    pub fn flush_hosts(&mut self) -> Vec<IpAddr> {
        let mut removed = Vec::new();
        self.targets.retain(|t| {
            let host = t.source == TargetSource::Host;
            if host {
                removed.push(t.address);
            }
            !host
        });
        removed
    }

    /// Sets a target aside as dead: it lost [`super::NUM_PROBE_FAILS`]
    /// probes in a row while the member was otherwise fine.
    pub fn declare_dead(&mut self, address: IpAddr, now: Duration) -> SetAside {
        self.set_aside(address, TargetStatus::Dead, now)
    }

    /// Sets a target aside as slow: its CRTT exceeded the interval while
    /// the other targets were fast (see [`Self::is_exception`]).
    pub fn declare_slow(&mut self, address: IpAddr, now: Duration) -> SetAside {
        self.set_aside(address, TargetStatus::Slow, now)
    }

    fn set_aside(&mut self, address: IpAddr, status: TargetStatus, now: Duration) -> SetAside {
        let Some(i) = self.targets.iter().position(|t| t.address == address) else {
            return SetAside::Unknown;
        };
        let result = if self.targets[i].source.is_router_class() {
            let t = &mut self.targets[i];
            t.status = status;
            t.since = now;
            t.rtt.reset();
            SetAside::Kept
        } else {
            self.targets.remove(i);
            SetAside::Deleted
        };
        self.settle(now);
        result
    }

    /// The target for the next failure-detection probe, round-robin from
    /// the last one, stepping dead and slow targets towards active on the
    /// way (in.mpathd's `target_next`).
    pub fn next_target(&mut self, now: Duration) -> Option<IpAddr> {
        let next = self.walk(self.last_fd, now)?;
        self.last_fd = Some(next);
        self.last_rtt = Some(next);
        Some(next)
    }

    /// The target for the next RTT-only probe.
    pub fn next_rtt_target(&mut self, now: Duration) -> Option<IpAddr> {
        let next = self.walk(self.last_rtt, now)?;
        self.last_rtt = Some(next);
        Some(next)
    }

    fn walk(&mut self, after: Option<IpAddr>, now: Duration) -> Option<IpAddr> {
        let n = self.targets.len();
        let start = after
            .and_then(|a| self.targets.iter().position(|t| t.address == a))
            .map_or(0, |i| i + 1);
        for k in 0..n {
            let i = (start + k) % n;
            let active = self.active_count();
            let t = &mut self.targets[i];
            match t.status {
                TargetStatus::Active => return Some(t.address),
                TargetStatus::Unused if active < MAX_PROBE_TARGETS => {
                    t.status = TargetStatus::Active;
                    return Some(t.address);
                }
                TargetStatus::Unused => {}
                TargetStatus::Slow if t.recovered(now) => t.status = TargetStatus::Unused,
                TargetStatus::Dead if t.recovered(now) => {
                    t.status = TargetStatus::Slow;
                    t.since = now;
                }
                TargetStatus::Slow | TargetStatus::Dead => {}
            }
        }
        None
    }

    /// Forgets every estimate (the member failed: replies queued behind
    /// neighbour resolution on a failed link say nothing of the path).
    pub fn reset_rtt(&mut self) {
        for t in &mut self.targets {
            t.rtt.reset();
        }
    }

    /// `address` (whose CRTT exceeds the interval) is the exception rather
    /// than the rule: at least [`MIN_PROBE_TARGETS`] other targets are
    /// active, all with a CRTT under interval / [`EXCEPTION_FACTOR`]
    /// (in.mpathd's `check_exception_target`).
    pub fn is_exception(&self, address: IpAddr, interval: Duration) -> bool {
        let others: Vec<&Target> = self.active().filter(|t| t.address != address).collect();
        others.len() >= MIN_PROBE_TARGETS
            && others
                .iter()
                .all(|t| t.rtt.crtt().unwrap_or_default() <= interval / EXCEPTION_FACTOR)
    }

    /// Every active target's CRTT is under interval / [`LOWER_FDT_TRIGGER`]
    /// (in.mpathd's `check_pii_crtt_improved`).
    pub fn crtt_improved(&self, interval: Duration) -> bool {
        self.active()
            .all(|t| t.rtt.crtt().unwrap_or_default() <= interval / LOWER_FDT_TRIGGER)
    }

    /// When no target is active but some remain, reactivates the best
    /// [`MIN_PROBE_TARGETS`] of them (in.mpathd's `target_activate_all`).
    fn settle(&mut self, now: Duration) {
        if self.active_count() > 0 {
            return;
        }
        while self.active_count() < MIN_PROBE_TARGETS {
            let Some(i) = self.select_best(now) else {
                return;
            };
            self.targets[i].status = TargetStatus::Active;
        }
    }

    /// The best inactive target: unused, else recovered slow, slow,
    /// recovered dead, dead; recovered ones step up on the way (in.mpathd's
    /// `target_select_best`).
    fn select_best(&mut self, now: Duration) -> Option<usize> {
        let (mut slow, mut dead, mut slow_recovered, mut dead_recovered) = (None, None, None, None);
        for (i, t) in self.targets.iter_mut().enumerate() {
            match t.status {
                TargetStatus::Unused => return Some(i),
                TargetStatus::Slow if t.recovered(now) => {
                    t.status = TargetStatus::Unused;
                    slow_recovered = Some(i);
                }
                TargetStatus::Slow => slow = Some(i),
                TargetStatus::Dead if t.recovered(now) => {
                    t.status = TargetStatus::Slow;
                    t.since = now;
                    dead_recovered = Some(i);
                }
                TargetStatus::Dead => dead = Some(i),
                TargetStatus::Active => {}
            }
        }
        slow_recovered.or(slow).or(dead_recovered).or(dead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::testing::{ms, secs, v4 as addr};

    const INTERVAL: Duration = Duration::from_secs(1);
    const FD: SampleKind = SampleKind::FailureDetection;

    fn statuses(l: &TargetList) -> Vec<(IpAddr, TargetStatus)> {
        l.iter().map(|t| (t.address, t.status)).collect()
    }

    fn active(l: &TargetList) -> Vec<IpAddr> {
        l.active().map(|t| t.address).collect()
    }

    #[test]
    fn estimator_follows_appendix_a() {
        let mut e = RttEstimator::new();
        assert_eq!((e.crtt(), e.average(), e.deviation()), (None, None, None));
        // First sample m: sa = 8m, sv = 2m, so CRTT = m + 2m.
        assert_eq!(e.sample(ms(10), INTERVAL, FD), SampleEffect::Applied);
        assert_eq!(
            (e.crtt(), e.average(), e.deviation()),
            (Some(ms(30)), Some(ms(10)), Some(ms(5)))
        );
        // err = 0: sv loses a quarter of itself.
        e.sample(ms(10), INTERVAL, FD);
        assert_eq!(
            (e.crtt(), e.deviation()),
            (Some(ms(25)), Some(Duration::from_micros(3750)))
        );
        // err = 10 ms: sa/8 moves by 1/8 of it, sv by |err| - sv/4.
        e.sample(ms(20), INTERVAL, FD);
        assert_eq!(e.average(), Some(Duration::from_micros(11250)));
        assert_eq!(e.deviation(), Some(Duration::from_nanos(5_312_500)));
        assert_eq!(e.crtt(), Some(Duration::from_micros(32500)));
    }

    #[test]
    fn bogus_samples_are_discarded() {
        let mut e = RttEstimator::new();
        e.sample(ms(10), INTERVAL, FD);
        let before = e.clone();
        // Longer than the whole history window of 52 intervals.
        assert_eq!(e.sample(ms(52_001), INTERVAL, FD), SampleEffect::Ignored);
        assert_eq!(e, before);
    }

    #[test]
    fn a_spike_is_held_back_once_and_two_are_applied() {
        let mut e = RttEstimator::new();
        e.sample(ms(10), INTERVAL, FD);
        e.sample(ms(10), INTERVAL, FD);
        assert_eq!(e.crtt(), Some(ms(25)));
        // 900 ms would make the CRTT 1022.5 ms, above the 1 s interval.
        assert_eq!(e.sample(ms(900), INTERVAL, FD), SampleEffect::HeldBack);
        assert_eq!((e.crtt(), e.held_back()), (Some(ms(25)), 1));
        // A normal sample: the held one was a spike and is dropped.
        assert_eq!(e.sample(ms(10), INTERVAL, FD), SampleEffect::Applied);
        assert_eq!(
            (e.crtt(), e.held_back()),
            (Some(Duration::from_micros(21250)), 0)
        );
        // Two in a row: the path really slowed down, both count.
        assert_eq!(e.sample(ms(900), INTERVAL, FD), SampleEffect::HeldBack);
        assert_eq!(e.sample(ms(900), INTERVAL, FD), SampleEffect::Applied);
        assert_eq!(
            (e.crtt(), e.held_back()),
            (Some(Duration::from_nanos(1_671_171_875)), 0)
        );
    }

    #[test]
    fn rtt_only_samples_only_lower_the_estimate() {
        let mut e = RttEstimator::new();
        // No estimate yet: nothing to lower.
        assert_eq!(
            e.sample(ms(10), INTERVAL, SampleKind::RttOnly),
            SampleEffect::Ignored
        );
        for _ in 0..3 {
            e.sample(ms(100), INTERVAL, FD);
        }
        assert_eq!(e.crtt(), Some(Duration::from_micros(212_500)));
        // Higher, or lower but widening the deviation more: no effect.
        assert_eq!(
            e.sample(ms(400), INTERVAL, SampleKind::RttOnly),
            SampleEffect::Ignored
        );
        assert_eq!(
            e.sample(ms(10), INTERVAL, SampleKind::RttOnly),
            SampleEffect::Ignored
        );
        assert_eq!(e.crtt(), Some(Duration::from_micros(212_500)));
        assert_eq!(
            e.sample(ms(90), INTERVAL, SampleKind::RttOnly),
            SampleEffect::Applied
        );
        assert_eq!(e.crtt(), Some(Duration::from_nanos(193_125_000)));
        // Never held back: a high RTT-only sample just does not count.
        assert_eq!(
            e.sample(ms(2000), INTERVAL, SampleKind::RttOnly),
            SampleEffect::Ignored
        );
        assert_eq!(e.held_back(), 0);
    }

    #[test]
    fn explicit_targets_come_first_and_at_most_five_are_active() {
        let mut l = TargetList::new();
        let routers: Vec<IpAddr> = (10..16).map(addr).collect();
        assert!(l.set_router_targets(&[], &routers, secs(0)).is_empty());
        assert_eq!(active(&l), routers[..5]);
        assert_eq!(l.get(addr(15)).unwrap().status, TargetStatus::Unused);
        // An explicit target goes first and pushes the fifth router out.
        let removed = l.set_router_targets(&[addr(1), addr(10)], &routers, secs(0));
        assert!(removed.is_empty());
        assert_eq!(
            active(&l),
            [addr(1), addr(10), addr(11), addr(12), addr(13)]
        );
        assert_eq!(l.get(addr(10)).unwrap().source, TargetSource::Explicit);
        // Routes removed: their targets go, the rest stays.
        let removed = l.set_router_targets(&[addr(1)], &routers[2..4], secs(0));
        assert_eq!(removed, [addr(10), addr(11), addr(14), addr(15)]);
        assert_eq!(active(&l), [addr(1), addr(12), addr(13)]);
        assert!(l.are_routers());
    }

    #[test]
    fn routers_win_over_hosts() {
        let mut l = TargetList::new();
        for d in 20..27 {
            l.add_host(addr(d), secs(0));
        }
        // Up to five hosts.
        assert_eq!(active(&l), (20..25).map(addr).collect::<Vec<_>>());
        assert!(!l.add_host(addr(20), secs(0)));
        let removed = l.set_router_targets(&[], &[addr(1)], secs(1));
        assert_eq!(removed, (20..25).map(addr).collect::<Vec<_>>());
        assert_eq!(active(&l), [addr(1)]);
        assert!(!l.add_host(addr(30), secs(2)));
        // The routers go: hosts may come back.
        l.set_router_targets(&[], &[], secs(3));
        assert!(l.is_empty());
        assert!(l.add_host(addr(30), secs(4)));
        assert!(!l.are_routers());
    }

    #[test]
    fn round_robin_over_active_targets() {
        let mut l = TargetList::new();
        l.set_router_targets(&[], &[addr(1), addr(2), addr(3)], secs(0));
        let order: Vec<IpAddr> = (0..5).map(|_| l.next_target(secs(1)).unwrap()).collect();
        assert_eq!(order, [addr(1), addr(2), addr(3), addr(1), addr(2)]);
        // RTT-only probes continue from the last failure-detection target.
        assert_eq!(l.next_rtt_target(secs(1)), Some(addr(3)));
        assert_eq!(l.next_rtt_target(secs(1)), Some(addr(1)));
        assert_eq!(l.next_target(secs(1)), Some(addr(3)));
    }

    #[test]
    fn dead_routers_are_kept_and_step_back_every_minute() {
        let mut l = TargetList::new();
        l.set_router_targets(&[], &[addr(1), addr(2)], secs(0));
        l.get_mut(addr(2)).unwrap().rtt.sample(ms(10), INTERVAL, FD);
        assert_eq!(l.declare_dead(addr(2), secs(10)), SetAside::Kept);
        let dead = l.get(addr(2)).unwrap();
        assert_eq!((dead.status, dead.rtt.crtt()), (TargetStatus::Dead, None));
        assert_eq!(active(&l), [addr(1)]);
        // Not before the recovery time (strictly after it).
        assert_eq!(l.next_target(secs(70)), Some(addr(1)));
        assert_eq!(l.get(addr(2)).unwrap().status, TargetStatus::Dead);
        // Dead -> slow, then a minute later slow -> unused, then active.
        assert_eq!(l.next_target(secs(71)), Some(addr(1)));
        assert_eq!(l.get(addr(2)).unwrap().status, TargetStatus::Slow);
        assert_eq!(l.next_target(secs(131)), Some(addr(1)));
        assert_eq!(l.get(addr(2)).unwrap().status, TargetStatus::Slow);
        assert_eq!(l.next_target(secs(132)), Some(addr(1)));
        assert_eq!(l.get(addr(2)).unwrap().status, TargetStatus::Unused);
        assert_eq!(l.next_target(secs(133)), Some(addr(2)));
        assert_eq!(l.get(addr(2)).unwrap().status, TargetStatus::Active);
    }

    #[test]
    fn dead_hosts_are_deleted() {
        let mut l = TargetList::new();
        l.add_host(addr(20), secs(0));
        l.add_host(addr(21), secs(0));
        assert_eq!(l.declare_dead(addr(20), secs(5)), SetAside::Deleted);
        assert_eq!(l.declare_slow(addr(21), secs(5)), SetAside::Deleted);
        assert!(l.is_empty());
        assert_eq!(l.declare_dead(addr(20), secs(5)), SetAside::Unknown);
    }

    #[test]
    fn when_all_vanish_the_best_three_are_reactivated() {
        let mut l = TargetList::new();
        let routers: Vec<IpAddr> = (1..=5).map(addr).collect();
        l.set_router_targets(&[], &routers, secs(0));
        l.declare_dead(addr(1), secs(0));
        l.declare_dead(addr(2), secs(100));
        l.declare_slow(addr(3), secs(0));
        l.declare_slow(addr(4), secs(100));
        // The last active one goes: three come back, best first. Unused:
        // none. Recovered slow: 3 (a minute since 0). Then slow: 4, and 1,
        // which was dead long enough to step up to slow on the first pick.
        // Dead ones (2, 5) only when nothing better is left.
        l.declare_dead(addr(5), secs(150));
        assert_eq!(
            statuses(&l),
            [
                (addr(1), TargetStatus::Active),
                (addr(2), TargetStatus::Dead),
                (addr(3), TargetStatus::Active),
                (addr(4), TargetStatus::Active),
                (addr(5), TargetStatus::Dead),
            ]
        );
        assert_eq!(l.get(addr(1)).unwrap().since, secs(150));
    }

    #[test]
    fn exception_and_improvement_checks() {
        let mut l = TargetList::new();
        l.set_router_targets(&[], &[addr(1), addr(2), addr(3), addr(4)], secs(0));
        for d in 1..=3 {
            l.get_mut(addr(d))
                .unwrap()
                .rtt
                .sample(ms(100), secs(10), FD);
        }
        l.get_mut(addr(4))
            .unwrap()
            .rtt
            .sample(ms(1000), secs(10), FD);
        // CRTTs 300 ms, and 3 s for the fourth. Interval 1 s: the others
        // are under 500 ms, so the fourth is the exception.
        assert!(l.is_exception(addr(4), INTERVAL));
        assert!(!l.is_exception(addr(4), ms(500)));
        // With only two others, nothing can be judged.
        l.declare_slow(addr(3), secs(0));
        assert!(!l.is_exception(addr(4), INTERVAL));
        l.declare_slow(addr(4), secs(0));
        assert!(l.crtt_improved(ms(1200)));
        assert!(!l.crtt_improved(ms(1199)));
    }
}
