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
