//! A member of the group as the prober sees it, and its probing in each
//! family (in.mpathd's `phyint` and `phyint_instance`).
use std::net::IpAddr;
use std::time::Duration;

use super::super::targets::TargetList;
use super::super::{Family, MIN_LOSS_WAIT};
use super::history::{History, Sent};

/// One member's probing in one family (in.mpathd's phyint instance).
#[derive(Debug)]
pub(super) struct Instance {
    pub(super) family: Family,
    pub(super) targets: TargetList,
    /// The next sequence number (`pii_snxt`).
    pub(super) snxt: u16,
    /// The failure-detection probes sent and their fates.
    pub(super) history: History,
    /// The next tick (`pii_snxt_time`).
    pub(super) next_tick: Duration,
    /// Strictly periodic base of the ticks (`pii_snxt_basetime`).
    pub(super) base: Duration,
    /// Base of the failure-detection probes while the FDT is raised
    /// (`pii_fd_snxt_basetime`).
    pub(super) fd_base: Duration,
    /// Losses do not fail the member before this (`pii_fd_hrtime`).
    pub(super) quiet_until: Duration,
    /// The end of the quiet period has been dealt with.
    pub(super) quiet_checked: bool,
}

/// When a pending probe is lost: its target's CRTT after sending, or the
/// group's interval while there is no estimate; never sooner than
/// [`MIN_LOSS_WAIT`].
fn deadline(targets: &TargetList, sent: &Sent, interval: Duration) -> Duration {
    let crtt = sent
        .target
        .and_then(|a| targets.get(a))
        .and_then(|t| t.rtt.crtt());
    sent.at + crtt.unwrap_or(interval).max(MIN_LOSS_WAIT)
}

/// Whole `period`s in `span`.
fn periods(span: Duration, period: Duration) -> u32 {
    let n = span.as_nanos() / period.as_nanos().max(1);
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Instance {
    pub(super) fn new(family: Family, now: Duration, offset: Duration, quiet: Duration) -> Self {
        Instance {
            family,
            targets: TargetList::new(),
            snxt: 1,
            history: History::new(),
            next_tick: now + offset,
            base: now + offset,
            fd_base: now + offset,
            quiet_until: now + quiet,
            quiet_checked: false,
        }
    }

    /// Probing resumes at `now` (link up, online).
    pub(super) fn restart(&mut self, now: Duration) {
        self.next_tick = now;
        self.base = now;
        self.fd_base = now;
    }

    /// The start-up quiet period starts over at `now`.
    pub(super) fn start_quiet(&mut self, now: Duration, quiet: Duration) {
        self.quiet_until = now + quiet;
        self.quiet_checked = false;
    }

    /// When a pending probe is lost.
    pub(super) fn deadline(&self, sent: &Sent, interval: Duration) -> Duration {
        deadline(&self.targets, sent, interval)
    }

    /// The pending probes' loss deadlines.
    pub(super) fn deadlines(&self, interval: Duration) -> impl Iterator<Item = Duration> + '_ {
        self.history
            .pending()
            .map(move |s| self.deadline(s, interval))
    }

    /// Marks the pending probes whose deadline has come as lost; returns
    /// them.
    pub(super) fn lose_due(&mut self, now: Duration, interval: Duration) -> Vec<Sent> {
        let targets = &self.targets;
        self.history
            .lose_due(now, |s| deadline(targets, s, interval))
    }

    /// Targets removed: their pending probes are lost (in.mpathd's
    /// `reset_pii_probes`; returned) and no reply can count for them any
    /// more; with no target left, the history means nothing.
    pub(super) fn forget(&mut self, removed: &[IpAddr], now: Duration) -> Vec<Sent> {
        let lost = self.history.forget(removed, now);
        if self.targets.is_empty() {
            self.history.clear();
        }
        lost
    }

    /// Sets the next tick a `jitter` after the periodic base and moves the
    /// base on by `user` (the configured interval). Called late (a busy
    /// host), it skips the missed ticks, keeping the base on its period.
    pub(super) fn schedule(&mut self, now: Duration, user: Duration, jitter: Duration) {
        self.next_tick = self.base + jitter;
        if now > self.next_tick {
            let skip = user.saturating_mul(periods(now - self.next_tick, user).saturating_add(1));
            self.next_tick += skip;
            self.base += skip;
        }
        self.base += user;
    }

    /// Moves the failure-detection base on: with the tick base while the
    /// FDT is not raised, else by the raised `interval`, skipping missed
    /// ones.
    pub(super) fn schedule_fd(&mut self, now: Duration, user: Duration, interval: Duration) {
        if user == interval {
            self.fd_base = self.base;
        } else {
            self.fd_base += interval;
            if now > self.fd_base {
                self.fd_base += interval
                    .saturating_mul(periods(now - self.fd_base, interval).saturating_add(1));
            }
        }
    }

    /// The sequence number of the next failure-detection probe, which
    /// goes to `target` at `now`.
    pub(super) fn record_probe(&mut self, target: IpAddr, now: Duration) -> u16 {
        let seq = self.snxt;
        self.snxt = seq.wrapping_add(1);
        self.history.push(seq, target, now);
        seq
    }
}

#[derive(Debug)]
pub(super) struct Member {
    pub(super) name: String,
    pub(super) link_up: bool,
    pub(super) offline: bool,
    /// What the policy believes of the probes: true until we say Failure
    /// (the policy trusts a member at first), false from a Failure, link
    /// down or offline until we say Repair.
    pub(super) ok: bool,
    /// Failed by a group failure: not repaired merely for having no target
    /// until another member has repaired.
    pub(super) awaiting_group_repair: bool,
    /// Failed by a previous ipmpd's probes: not repaired merely for having
    /// no target before this time (its targets are still being found).
    pub(super) kept_failed_until: Option<Duration>,
    /// Routers per family (index [`fam`]), kept even while the family does
    /// not probe.
    pub(super) routers: [Vec<IpAddr>; 2],
    /// IPv4 first, then IPv6; empty for a member without probing.
    pub(super) instances: Vec<Instance>,
}

pub(super) fn fam(family: Family) -> usize {
    match family {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

impl Member {
    /// A member with its link up, online, trusted, probing in no family.
    pub(super) fn new(name: &str) -> Self {
        Member {
            name: name.into(),
            link_up: true,
            offline: false,
            ok: true,
            awaiting_group_repair: false,
            kept_failed_until: None,
            routers: [Vec::new(), Vec::new()],
            instances: Vec::new(),
        }
    }

    /// Sends probes: link up, online, some family to probe in.
    pub(super) fn probing(&self) -> bool {
        self.link_up && !self.offline && !self.instances.is_empty()
    }

    pub(super) fn has_targets(&self) -> bool {
        self.instances.iter().any(|i| !i.targets.is_empty())
    }

    /// The position of the member's instance in `family`, if it probes in it.
    pub(super) fn instance(&self, family: Family) -> Option<usize> {
        self.instances.iter().position(|i| i.family == family)
    }

    /// Running, as in.mpathd's failure_state sees the other members: link
    /// up, online and not failed (a link-only member by its link alone).
    pub(super) fn working(&self, group_failed: bool) -> bool {
        self.link_up && !self.offline && (self.instances.is_empty() || (self.ok && !group_failed))
    }

    /// Has shown life since `first_loss`: link up and online, and either no
    /// probing at all or an acknowledged probe after it.
    pub(super) fn shows_life_since(&self, first_loss: Duration, group_failed: bool) -> bool {
        self.working(group_failed)
            && (self.instances.is_empty()
                || self
                    .instances
                    .iter()
                    .any(|i| i.history.last_success().is_some_and(|t| t > first_loss)))
    }

    /// Probing stops (link down, offline): the history goes, so that
    /// repair is judged on fresh probes, and the policy now holds the
    /// member's probes as not working.
    pub(super) fn stop(&mut self) {
        if !self.instances.is_empty() {
            self.ok = false;
        }
        for i in &mut self.instances {
            i.history.clear();
            i.targets.reset_rtt();
        }
    }
}
