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
