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
