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
