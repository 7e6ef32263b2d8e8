//! The prober of one IPMP group: in.mpathd's probe timer, reply handling,
//! failure and repair detection and adaptive failure detection time
//! (`mpd_probe.c`), over simulated time.
//!
//! Each member probes in each of its families (an *instance*, in.mpathd's
//! phyint instance) while its link is up and it is online:
//!
//! - **Timing.** The configured interval is FDT / [`PROBES_PER_FDT`]. An
//!   instance starts at a random offset within one interval; every *tick*
//!   then comes at a random [`MIN_RANDOM_FACTOR`]..[`MAX_RANDOM_FACTOR`]
//!   interval after a strictly periodic base time, and sends one probe:
//!   target discovery when the instance has no target, else a
//!   failure-detection probe to the next active target (round-robin), with
//!   a 16-bit sequence number (from 1, wrapping). While the group's FDT is
//!   raised, failure-detection probes go out at the raised interval and the
//!   ticks in between send RTT-only probes, which carry no sequence number
//!   and can only lower an estimate. With a single host target, each
//!   failure-detection probe is followed by a discovery probe, to find more.
//! - **Losses.** A probe is lost when unacknowledged at its target's CRTT
//!   after sending (the group's interval while there is no estimate); at
//!   most [`MAX_OUTSTANDING`] probes await a reply, the older one is given
//!   up when a third goes out. A reply counts when its sequence number is
//!   one of the last [`PROBE_HISTORY`] sent and it comes from the target
//!   that probe went to; a duplicate counts nothing; a late one (after its
//!   probe was counted lost) still turns it into an acknowledged probe, as
//!   in.mpathd does.
//! - **Failure** ([`ProberEvent::Failure`]): [`NUM_PROBE_FAILS`] consecutive
//!   losses in this family and, when the member's other family has targets
//!   too, in that one (failure needs both). Decided the moment the last of
//!   them is lost, except during the start-up quiet period (until the first
//!   acknowledged probe or `startup_quiet` after the instance started),
//!   when it waits for the end of the period. If no other member shows life
//!   (link up, online, and either no probing at all or an acknowledged probe
//!   after this member's first loss), the whole group has failed: every
//!   probing member fails at once and every host target is flushed.
//! - **Dead targets.** [`NUM_PROBE_FAILS`] consecutive losses on one target
//!   while the member is otherwise fine: a router-class target is set aside
//!   as dead, a host deleted and a discovery probe sent at once.
//! - **Repair** ([`ProberEvent::Repair`]): [`NUM_PROBE_REPAIRS`] consecutive
//!   acknowledged probes in either family (or on one target), decided when
//!   the last of them is acknowledged; or, for a member that has no target
//!   at all, at once: a member without targets is treated as working
//!   (probe state `unknown`). The exception is a group failure: members left
//!   without targets by it stay failed until another member repairs, since
//!   flushing the host targets would otherwise undo the failure at once.
//!   Link down, offline and online clear the history (in.mpathd clears its
//!   probe statistics on link down), so repair needs fresh acknowledgements
//!   and the policy's `ProbeRepair` is sent again after each of them.
//! - **RTT** ([`super::targets::RttEstimator`]): fed by acknowledged
//!   failure-detection probes that are the newest acknowledged one of their
//!   target, only while the member is working and the group has not failed
//!   (replies after a repair may have waited for neighbour resolution).
//!   A member's estimates are reset when it fails.
//! - **Adaptive FDT.** A target whose CRTT exceeds the interval is set aside
//!   as slow when at least [`super::MIN_PROBE_TARGETS`] others are active
//!   and fast; otherwise the group's interval becomes
//!   [`NEXT_FDT_MULTIPLE`] × CRTT and the FDT [`PROBES_PER_FDT`] intervals
//!   ([`ProberEvent::FdtRaised`]). Once every active target's CRTT is under
//!   interval / [`LOWER_FDT_TRIGGER`] and [`FDT_SETTLING_TIME`] has passed
//!   since the last raise, the FDT is halved, not below the configured one
//!   ([`ProberEvent::FdtImproved`]).
//!
//! The caller's part: call [`GroupProber::poll`] at
//! [`GroupProber::next_deadline`] (which is "now" whenever something is
//! queued, e.g. after a link change), send what it returns and hand every
//! reply to [`GroupProber::on_reply`] as an [`EchoReply`]; give the events
//! to the policy in order ([`ProberEvent::Failure`] as
//! `Event::ProbeFailure`, [`ProberEvent::Repair`] as `Event::ProbeRepair`)
//! and log the FDT ones.
//! Add every member of the group, with no family when it has no test
//! address, so that a link-only member counts as showing life. Report a
//! member's disappearance from the kernel as its link going down.
//!
//! The code, by in.mpathd's parts: this file holds the types the caller
//! sees and the prober's calls; `member` a member and its per-family
//! instances, `history` the probes each instance sent and their fates,
//! `timer` what each tick sends, `incoming` the replies, `failure` what
//! losses and acknowledgements decide, `fdt` the adaptive failure
//! detection time; `sim` drives a prober over simulated time for the tests.
//!
//! [`PROBES_PER_FDT`]: super::PROBES_PER_FDT
//! [`MIN_RANDOM_FACTOR`]: super::MIN_RANDOM_FACTOR
//! [`MAX_RANDOM_FACTOR`]: super::MAX_RANDOM_FACTOR
//! [`MAX_OUTSTANDING`]: super::MAX_OUTSTANDING
//! [`PROBE_HISTORY`]: super::PROBE_HISTORY
//! [`NUM_PROBE_FAILS`]: super::NUM_PROBE_FAILS
//! [`NUM_PROBE_REPAIRS`]: super::NUM_PROBE_REPAIRS
//! [`NEXT_FDT_MULTIPLE`]: super::NEXT_FDT_MULTIPLE
//! [`LOWER_FDT_TRIGGER`]: super::LOWER_FDT_TRIGGER
//! [`FDT_SETTLING_TIME`]: super::FDT_SETTLING_TIME
use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use super::Family;
pub use crate::model::ProbeMode;
use crate::model::ProbeState;
use fdt::Fdt;
use history::Sent;
use member::{fam, Instance, Member};

mod failure;
mod fdt;
mod history;
mod incoming;
mod member;
#[cfg(test)]
mod sim;
mod timer;

/// Probe reports kept for ipmpstat -p until [`GroupProber::drain_reports`];
/// older ones are dropped so that nobody reading them costs nothing.
pub const MAX_REPORTS: usize = 1024;

/// What a probe is for; its code travels in the probe payload and comes
/// back with the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// Counts towards failure and repair, and measures the RTT
    /// (in.mpathd's PROBE_UNI).
    FailureDetection,
    /// Multicast to all nodes to find host targets (PROBE_MULTI).
    TargetDiscovery,
    /// Only measures the RTT, while the FDT is raised (PROBE_RTT).
    RttOnly,
}

impl ProbeKind {
    /// The stable wire code.
    pub const fn code(self) -> u32 {
        match self {
            ProbeKind::FailureDetection => 0,
            ProbeKind::TargetDiscovery => 1,
            ProbeKind::RttOnly => 2,
        }
    }

    pub const fn from_code(code: u32) -> Option<ProbeKind> {
        match code {
            0 => Some(ProbeKind::FailureDetection),
            1 => Some(ProbeKind::TargetDiscovery),
            2 => Some(ProbeKind::RttOnly),
            _ => None,
        }
    }
}

/// A probe for the caller to send now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeToSend {
    pub member: String,
    pub family: Family,
    /// The echo sequence number; 0 for discovery and RTT-only probes,
    /// which have none of their own.
    pub seq: u16,
    /// A target, or the all-nodes group for discovery.
    pub target: IpAddr,
    pub kind: ProbeKind,
}

/// A decision for the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProberEvent {
    /// The probes show the member failed: policy `Event::ProbeFailure`.
    Failure(String),
    /// The probes show the member working: policy `Event::ProbeRepair`.
    Repair(String),
    /// The targets' RTTs cannot meet the configured FDT: raised.
    FdtRaised {
        group: String,
        family: Family,
        member: String,
        requested_fdt: Duration,
        new_fdt: Duration,
    },
    /// The RTTs allow a lower FDT again.
    FdtImproved {
        group: String,
        family: Family,
        member: String,
        new_fdt: Duration,
    },
}

/// The FDT events give in.mpathd's log lines, word for word (its
/// `mpd_probe.c`); failure and repair are logged by the policy, in its own
/// words.
impl fmt::Display for ProberEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProberEvent::Failure(member) => write!(f, "probes show {member} failed"),
            ProberEvent::Repair(member) => write!(f, "probes show {member} working"),
            ProberEvent::FdtRaised {
                group,
                family,
                member,
                requested_fdt,
                new_fdt,
            } => write!(
                f,
                "Cannot meet requested failure detection time of {} ms on ({family} {member}) \
                 new failure detection time for group \"{group}\" is {} ms",
                requested_fdt.as_millis(),
                new_fdt.as_millis()
            ),
            ProberEvent::FdtImproved {
                group,
                family,
                member,
                new_fdt,
            } => write!(
                f,
                "Improved failure detection time {} ms on ({family} {member}) for group \"{group}\"",
                new_fdt.as_millis()
            ),
        }
    }
}

/// One active target as ipmpstat shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetView {
    pub address: IpAddr,
    /// Smoothed RTT, sa/8 (RTTAVG); `None` before the first sample.
    pub rtt_avg: Option<Duration>,
    /// Mean deviation, sv/4 (RTTDEV).
    pub rtt_dev: Option<Duration>,
    /// Conservative RTT, sa/8 + sv: a probe is lost after this long.
    pub crtt: Option<Duration>,
}

/// One member's probing in one family, for ipmpstat -t and -p.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeView {
    pub mode: ProbeMode,
    /// The active targets, in probing order.
    pub targets: Vec<TargetView>,
}

/// How a failure-detection probe ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    Acked { rtt: Duration },
    Lost,
}

/// A failure-detection probe that was acknowledged or lost (ipmpstat -p;
/// probe counters). A late reply to a probe reported lost is reported
/// again as acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    pub member: String,
    pub family: Family,
    pub seq: u16,
    /// `None` when the target has been removed since.
    pub target: Option<IpAddr>,
    pub sent: Duration,
    pub outcome: ProbeOutcome,
}

/// A reply to one of a member's probes, as the caller hands it in: the
/// probe's member, family, sequence number and kind (which the probe
/// payload carries back), who answered, and the RTT XDP measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EchoReply<'a> {
    pub member: &'a str,
    pub family: Family,
    /// The probe's sequence number; 0 for discovery and RTT-only probes.
    pub seq: u16,
    pub kind: ProbeKind,
    pub from: IpAddr,
    pub rtt: Duration,
}

/// Where one member's probing in one family is kept:
/// `members[member].instances[instance]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct InstanceRef {
    member: usize,
    instance: usize,
}

/// The prober of one group. See the module documentation for the rules.
#[derive(Debug)]
pub struct GroupProber {
    group: String,
    /// The configured and the current failure detection time.
    fdt: Fdt,
    startup_quiet: Duration,
    explicit: Vec<IpAddr>,
    members: Vec<Member>,
    /// Every member failed together and none has repaired yet.
    group_failed: bool,
    /// The latest time passed in.
    last_now: Duration,
    events: Vec<ProberEvent>,
    sends: Vec<ProbeToSend>,
    reports: VecDeque<ProbeReport>,
}

/// A random draw as a fraction in [0, 1] (whatever the caller returns).
fn fraction(random: &mut dyn FnMut() -> f64) -> f64 {
    let r = random();
    if r.is_nan() {
        0.0
    } else {
        r.clamp(0.0, 1.0)
    }
}

impl GroupProber {
    /// A prober for group `group` with no member yet.
    pub fn new(group: &str, configured_fdt: Duration, startup_quiet: Duration) -> Self {
        GroupProber {
            group: group.into(),
            fdt: Fdt::new(configured_fdt),
            startup_quiet,
            explicit: Vec::new(),
            members: Vec::new(),
            group_failed: false,
            last_now: Duration::ZERO,
            events: Vec::new(),
            sends: Vec::new(),
            reports: VecDeque::new(),
        }
    }

    /// Adds a member probing in `families` (none: a member without a test
    /// address, which still counts when telling interface from group
    /// failures), its link assumed up and its probes trusted, as the
    /// policy's. Each family starts at a random offset within one interval
    /// and its start-up quiet period begins. For a member already there,
    /// only the families change: dropped ones stop, new ones start, the
    /// others keep their state.
    pub fn add_member(
        &mut self,
        member: &str,
        families: &[Family],
        now: Duration,
        random: &mut dyn FnMut() -> f64,
    ) {
        self.observe(now);
        let mi = match self.index(member) {
            Some(mi) => mi,
            None => {
                self.members.push(Member::new(member));
                self.members.len() - 1
            }
        };
        self.members[mi]
            .instances
            .retain(|i| families.contains(&i.family));
        for family in [Family::V4, Family::V6] {
            if !families.contains(&family) || self.members[mi].instance(family).is_some() {
                continue;
            }
            // in.mpathd's start_timer: spread the members over one interval.
            let offset = self.fdt.interval.mul_f64(fraction(random));
            let instance = Instance::new(family, now, offset, self.startup_quiet);
            let m = &mut self.members[mi];
            m.instances.push(instance);
            m.instances.sort_by_key(|i| i.family);
            let instance = m.instance(family).expect("just added");
            self.refresh_routers(InstanceRef {
                member: mi,
                instance,
            });
        }
        self.settle();
    }

    /// A previous ipmpd's probes failed `member` (read from its record at
    /// a restart): it stays failed until [`NUM_PROBE_REPAIRS`] acknowledged
    /// probes, and the start-up quiet period does not repair it. Only when
    /// it still has no target at all after that period is it treated as
    /// working, as any member without targets.
    ///
    /// [`NUM_PROBE_REPAIRS`]: super::NUM_PROBE_REPAIRS
    pub fn restore_failed(&mut self, member: &str, now: Duration) {
        self.observe(now);
        let quiet = self.startup_quiet;
        if let Some(m) = self.index(member).map(|mi| &mut self.members[mi]) {
            if !m.instances.is_empty() {
                m.ok = false;
                m.kept_failed_until = Some(now + quiet);
            }
        }
    }

    /// The start-up quiet period of members that start probing from now on
    /// (configuration reload).
    pub fn set_startup_quiet(&mut self, quiet: Duration) {
        self.startup_quiet = quiet;
    }

    /// `member` starts probing now (its interface appeared): its start-up
    /// quiet period counts from here, not from when ipmpd started.
    pub fn start_quiet(&mut self, member: &str, now: Duration) {
        self.observe(now);
        let quiet = self.startup_quiet;
        if let Some(mi) = self.index(member) {
            for i in &mut self.members[mi].instances {
                i.start_quiet(now, quiet);
            }
        }
    }

    /// Removes a member (configuration reload).
    pub fn remove_member(&mut self, member: &str) {
        if let Some(mi) = self.index(member) {
            self.members.remove(mi);
        }
    }

    /// The group's explicit targets (configuration): probed before routers,
    /// each by the members probing in its family.
    pub fn set_explicit_targets(&mut self, targets: Vec<IpAddr>) {
        self.explicit = targets;
        for at in self.instance_refs() {
            self.refresh_routers(at);
        }
        self.settle();
    }

    /// A member's routers in one family: next hops of routes that lie in
    /// its test prefix (IPv4) or link-local next hops (IPv6), as the caller
    /// finds them in the routing table.
    pub fn set_routers(&mut self, member: &str, family: Family, routers: Vec<IpAddr>) {
        let Some(mi) = self.index(member) else {
            return;
        };
        self.members[mi].routers[fam(family)] = routers;
        if let Some(instance) = self.members[mi].instance(family) {
            self.refresh_routers(InstanceRef {
                member: mi,
                instance,
            });
        }
        self.settle();
    }

    /// The member's link went down (or the interface vanished): probing
    /// stops and its history is cleared, so repair will need fresh
    /// acknowledgements; when it was the last working member, the group
    /// has failed (host targets flushed). Up: probing resumes at once.
    pub fn link_changed(&mut self, member: &str, up: bool, now: Duration) {
        let Some(mi) = self.changing(member, now, |m| m.link_up != up) else {
            return;
        };
        if up {
            self.members[mi].link_up = true;
            self.resume(mi, now);
        } else {
            let was_working = self.members[mi].working(self.group_failed);
            self.members[mi].stop();
            self.members[mi].link_up = false;
            let others_working = self
                .members
                .iter()
                .enumerate()
                .any(|(j, o)| j != mi && o.working(self.group_failed));
            if was_working && !others_working {
                self.group_failure(mi);
            }
        }
        self.settle();
    }

    /// Offline members are not probed (if_mpadm -d); online (-r) resumes
    /// probing at once, with a clean history, as for a new interface.
    pub fn set_offline(&mut self, member: &str, offline: bool, now: Duration) {
        let Some(mi) = self.changing(member, now, |m| m.offline != offline) else {
            return;
        };
        if offline {
            self.members[mi].stop();
            self.members[mi].offline = true;
        } else {
            self.members[mi].offline = false;
            self.resume(mi, now);
        }
        self.settle();
    }

    /// When [`Self::poll`] must be called next: the next probe or loss
    /// decision, or the latest time passed in when something is queued.
    pub fn next_deadline(&self) -> Option<Duration> {
        if !self.events.is_empty() || !self.sends.is_empty() {
            return Some(self.last_now);
        }
        let mut next: Option<Duration> = None;
        let mut consider = |t: Duration| next = Some(next.map_or(t, |n| n.min(t)));
        for m in self.members.iter().filter(|m| m.probing()) {
            for i in &m.instances {
                consider(i.next_tick);
                if !i.quiet_checked {
                    consider(i.quiet_until);
                }
                if let Some(until) = m.kept_failed_until.filter(|_| !m.ok) {
                    consider(until);
                }
                for deadline in i.deadlines(self.fdt.interval) {
                    consider(deadline);
                }
            }
        }
        next
    }

    /// Everything due at `now`: losses and what they decide, then the
    /// probes to send. Returns the probes and the events, in order.
    pub fn poll(
        &mut self,
        now: Duration,
        random: &mut dyn FnMut() -> f64,
    ) -> (Vec<ProbeToSend>, Vec<ProberEvent>) {
        self.observe(now);
        // Every loss first, so that a decision sees both families as they
        // are at `now`.
        let mut to_check = Vec::new();
        for at in self.instance_refs() {
            if !self.members[at.member].probing() {
                continue;
            }
            if self.mark_losses(at, now) {
                to_check.push(at);
            }
            let i = self.instance_mut(at);
            if !i.quiet_checked && now >= i.quiet_until {
                i.quiet_checked = true;
                to_check.push(at);
            }
        }
        for at in to_check {
            self.check_failure(at, now);
        }
        for at in self.instance_refs() {
            if self.members[at.member].probing() && now >= self.instance(at).next_tick {
                self.tick(at, now, random);
            }
        }
        self.settle();
        (
            std::mem::take(&mut self.sends),
            std::mem::take(&mut self.events),
        )
    }

    /// A reply to one of the probes at `now`. Discovery replies must not
    /// come from our own addresses (the caller filters them). Returns the
    /// events it causes, in order.
    pub fn on_reply(&mut self, now: Duration, reply: &EchoReply) -> Vec<ProberEvent> {
        self.observe(now);
        let at = self
            .index(reply.member)
            .filter(|&mi| self.members[mi].probing())
            .and_then(|member| {
                let instance = self.members[member].instance(reply.family)?;
                Some(InstanceRef { member, instance })
            });
        if let Some(at) = at {
            match reply.kind {
                ProbeKind::FailureDetection => {
                    self.fd_reply(at, now, reply.seq, reply.from, reply.rtt)
                }
                ProbeKind::RttOnly => self.rtt_reply(at, now, reply.from, reply.rtt),
                ProbeKind::TargetDiscovery => self.discovery_reply(at, now, reply.from),
            }
            self.settle();
        }
        std::mem::take(&mut self.events)
    }

    /// The group's current failure detection time (raised or configured).
    pub fn fdt(&self) -> Duration {
        self.fdt.current
    }

    /// A new configured FDT (reload): the FDT starts over from it, and
    /// when it changed every instance probes at once and then at the new
    /// interval (its next tick may have been a long old interval away).
    pub fn set_configured_fdt(&mut self, fdt: Duration) {
        if fdt != self.fdt.configured {
            let now = self.last_now;
            for i in self.members.iter_mut().flat_map(|m| &mut m.instances) {
                i.restart(now);
            }
        }
        self.fdt = Fdt::new(fdt);
        self.realign_fd_bases();
    }

    /// ipmpstat -i PROBE as far as the probes know: `disabled` without a
    /// family to probe in or offline, `failed` until the probes show it
    /// working again (also after link down), `unknown` without any target,
    /// else `ok`. A member that is not here is `disabled`.
    pub fn probe_state(&self, member: &str) -> ProbeState {
        let Some(m) = self.index(member).map(|mi| &self.members[mi]) else {
            return ProbeState::Disabled;
        };
        if m.instances.is_empty() || m.offline {
            ProbeState::Disabled
        } else if !m.ok {
            ProbeState::Failed
        } else if !m.has_targets() {
            ProbeState::Unknown
        } else {
            ProbeState::Ok
        }
    }

    /// A member's probing in one family; `None` when it does not probe in
    /// it (ipmpstat -t then shows one `disabled` row).
    pub fn view(&self, member: &str, family: Family) -> Option<ProbeView> {
        let m = &self.members[self.index(member)?];
        let i = &m.instances[m.instance(family)?];
        if m.offline {
            return Some(ProbeView {
                mode: ProbeMode::Disabled,
                targets: Vec::new(),
            });
        }
        Some(ProbeView {
            mode: if i.targets.are_routers() {
                ProbeMode::Routes
            } else {
                ProbeMode::Multicast
            },
            targets: i
                .targets
                .active()
                .map(|t| TargetView {
                    address: t.address,
                    rtt_avg: t.rtt.average(),
                    rtt_dev: t.rtt.deviation(),
                    crtt: t.rtt.crtt(),
                })
                .collect(),
        })
    }

    /// Failure-detection probes acknowledged or lost since the last call,
    /// oldest first (at most [`MAX_REPORTS`]).
    pub fn drain_reports(&mut self) -> Vec<ProbeReport> {
        self.reports.drain(..).collect()
    }

    fn observe(&mut self, now: Duration) {
        self.last_now = self.last_now.max(now);
    }

    fn index(&self, member: &str) -> Option<usize> {
        self.members.iter().position(|m| m.name == member)
    }

    /// Every member's every instance, members in order, IPv4 first.
    fn instance_refs(&self) -> Vec<InstanceRef> {
        self.members
            .iter()
            .enumerate()
            .flat_map(|(member, m)| {
                (0..m.instances.len()).map(move |instance| InstanceRef { member, instance })
            })
            .collect()
    }

    fn instance(&self, at: InstanceRef) -> &Instance {
        &self.members[at.member].instances[at.instance]
    }

    fn instance_mut(&mut self, at: InstanceRef) -> &mut Instance {
        &mut self.members[at.member].instances[at.instance]
    }

    /// The time is now `now`; `member`'s index if it is here and `differs`
    /// says the change at hand would change it.
    fn changing(
        &mut self,
        member: &str,
        now: Duration,
        differs: impl Fn(&Member) -> bool,
    ) -> Option<usize> {
        self.observe(now);
        self.index(member).filter(|&mi| differs(&self.members[mi]))
    }

    /// Probing resumes at `now` (link up, online); a member without
    /// probing that works again ends a group failure.
    fn resume(&mut self, mi: usize, now: Duration) {
        let m = &mut self.members[mi];
        for i in &mut m.instances {
            i.restart(now);
        }
        if m.working(false) && m.instances.is_empty() {
            self.group_repaired();
        }
    }

    fn report(&mut self, at: InstanceRef, sent: &Sent, outcome: ProbeOutcome) {
        if self.reports.len() == MAX_REPORTS {
            self.reports.pop_front();
        }
        let m = &self.members[at.member];
        self.reports.push_back(ProbeReport {
            member: m.name.clone(),
            family: m.instances[at.instance].family,
            seq: sent.seq,
            target: sent.target,
            sent: sent.at,
            outcome,
        });
    }

    /// Reports probes just lost, oldest first. Returns whether there were
    /// any.
    fn report_lost(&mut self, at: InstanceRef, lost: Vec<Sent>) -> bool {
        let any = !lost.is_empty();
        for s in lost {
            self.report(at, &s, ProbeOutcome::Lost);
        }
        any
    }

    /// Applies the explicit targets and the member's routers of the
    /// instance's family.
    fn refresh_routers(&mut self, at: InstanceRef) {
        let now = self.last_now;
        let m = &mut self.members[at.member];
        let i = &mut m.instances[at.instance];
        let family = i.family;
        let explicit: Vec<IpAddr> = self
            .explicit
            .iter()
            .filter(|a| Family::of(a) == family)
            .copied()
            .collect();
        let removed = i
            .targets
            .set_router_targets(&explicit, &m.routers[fam(family)], now);
        self.forget(at, &removed);
    }

    /// Targets removed from an instance: their pending probes are lost
    /// and no reply can count for them any more.
    fn forget(&mut self, at: InstanceRef, removed: &[IpAddr]) {
        let now = self.last_now;
        let lost = self.instance_mut(at).forget(removed, now);
        self.report_lost(at, lost);
    }

    /// Marks the pending probes whose deadline has come as lost. Returns
    /// whether any was.
    fn mark_losses(&mut self, at: InstanceRef, now: Duration) -> bool {
        let interval = self.fdt.interval;
        let lost = self.instance_mut(at).lose_due(now, interval);
        self.report_lost(at, lost)
    }

    /// Gives up the oldest pending probes so that at most
    /// [`MAX_OUTSTANDING`] are pending once the next one is sent. Returns
    /// whether any was.
    fn give_up_outstanding(&mut self, at: InstanceRef, now: Duration) -> bool {
        let lost = self.instance_mut(at).history.give_up_outstanding(now);
        self.report_lost(at, lost)
    }
}

#[cfg(test)]
mod tests {
    use super::sim::*;
    use super::*;
    use crate::model::ProbeMode;
    use crate::probe::MIN_LOSS_WAIT;

    /// With XDP's µs-exact RTTs the CRTT is tiny; a reply a little later
    /// than that, but within MIN_LOSS_WAIT, is still no loss.
    #[test]
    fn replies_within_the_minimum_wait_are_never_losses() {
        // 100 µs, steady; the probes sent in [31 s, 33 s) answered in 0.6 ms.
        let net: Net = Box::new(move |t, p| {
            let late = t >= secs(31) && t < secs(33);
            let rtt = if late {
                MIN_LOSS_WAIT * 6 / 10
            } else {
                Duration::from_micros(100)
            };
            match p.kind {
                ProbeKind::TargetDiscovery => vec![],
                _ => vec![(p.target, rtt)],
            }
        });
        let mut sim = pair(cycle(vec![0.5, 0.9, 0.2]), net);
        sim.run_until(secs(30));
        let crtt = sim.crtt("a", Family::V4, v4(1));
        assert!(crtt < MIN_LOSS_WAIT / 2, "CRTT {crtt:?} is not tiny");
        sim.run_until(secs(40));
        let lost = sim
            .p
            .drain_reports()
            .iter()
            .filter(|r| r.outcome == ProbeOutcome::Lost)
            .count();
        assert_eq!(lost, 0);
        assert!(sim.events.is_empty(), "{:?}", sim.events);
    }

    #[test]
    fn kind_codes_are_stable() {
        for (kind, code) in [
            (ProbeKind::FailureDetection, 0),
            (ProbeKind::TargetDiscovery, 1),
            (ProbeKind::RttOnly, 2),
        ] {
            assert_eq!(kind.code(), code);
            assert_eq!(ProbeKind::from_code(code), Some(kind));
        }
        assert_eq!(ProbeKind::from_code(3), None);
    }

    #[test]
    fn fdt_messages_use_in_mpathd_wording() {
        let raised = ProberEvent::FdtRaised {
            group: "production0".into(),
            family: Family::V4,
            member: "e1000g0".into(),
            requested_fdt: secs(10),
            new_fdt: Duration::from_nanos(23_396_406_250),
        };
        assert_eq!(
            raised.to_string(),
            "Cannot meet requested failure detection time of 10000 ms on (inet e1000g0) \
             new failure detection time for group \"production0\" is 23396 ms"
        );
        let improved = ProberEvent::FdtImproved {
            group: "production0".into(),
            family: Family::V6,
            member: "rge0".into(),
            new_fdt: secs(10),
        };
        assert_eq!(
            improved.to_string(),
            "Improved failure detection time 10000 ms on (inet6 rge0) for group \"production0\""
        );
        assert_eq!(ProbeMode::Multicast.to_string(), "multicast");
    }

    /// A reload that lowers the FDT again probes at once, not a long old
    /// interval later.
    #[test]
    fn a_new_fdt_reschedules_the_probes_at_once() {
        let mut sim = pair(always(1.0), answering());
        sim.run_until(secs(5));
        sim.p.set_configured_fdt(FDT * 300);
        sim.run_until(secs(6));
        let before = sim.fd_probes("a").len();
        sim.p.set_configured_fdt(FDT);
        sim.run_until(secs(9));
        let after: Vec<Duration> = sim.fd_probes("a")[before..].iter().map(|p| p.0).collect();
        assert!(after.len() >= 3, "probes after the reload: {after:?}");
        assert!(
            after[0] <= secs(7),
            "first probe after the reload: {after:?}"
        );
    }

    #[test]
    fn link_down_clears_the_history_and_repair_needs_ten_fresh_probes() {
        let mut sim = pair(always(1.0), answering());
        sim.run_until(at(10, 200));
        sim.p.link_changed("a", false, sim.now);
        sim.run_until(at(15, 200));
        assert_eq!(sim.p.probe_state("a"), ProbeState::Failed);
        // Nothing sent while down.
        assert!(sim.fd_probes("a").iter().all(|p| p.0 < at(10, 200)));
        sim.p.link_changed("a", true, sim.now);
        sim.run_until(secs(30));
        // Probing resumes at once: 15.2, 16.2, ..., the tenth at 24.2.
        let resumed = sim.fd_probes("a").into_iter().find(|p| p.0 >= at(15, 200));
        assert_eq!(resumed.unwrap().0, at(15, 200));
        assert_eq!(sim.events, [(at(24, 210), repair("a"))]);
    }

    #[test]
    fn offline_members_are_not_probed() {
        let mut sim = pair(always(1.0), answering());
        sim.run_until(at(10, 200));
        sim.p.set_offline("a", true, sim.now);
        sim.run_until(at(15, 200));
        assert_eq!(sim.p.probe_state("a"), ProbeState::Disabled);
        assert_eq!(
            sim.p.view("a", Family::V4).unwrap().mode,
            ProbeMode::Disabled
        );
        assert!(sim
            .sent
            .iter()
            .all(|(t, p)| p.member != "a" || *t < at(10, 200)));
        // Online: as a new interface, ten acknowledged probes repair it.
        sim.p.set_offline("a", false, sim.now);
        sim.run_until(secs(30));
        assert_eq!(sim.events, [(at(24, 210), repair("a"))]);
    }

    #[test]
    fn removed_members_are_forgotten() {
        let mut sim = pair(always(1.0), answering());
        sim.run_until(secs(5));
        sim.p.remove_member("a");
        sim.run_until(secs(10));
        assert!(sim
            .sent
            .iter()
            .all(|(t, p)| p.member == "b" || *t <= secs(5)));
        assert_eq!(sim.p.probe_state("a"), ProbeState::Disabled);
        assert_eq!(sim.p.view("a", Family::V4), None);
        // Re-adding a family keeps the others' state.
        sim.add("b", &[Family::V4, Family::V6]);
        assert_eq!(sim.targets("b", Family::V4), [v4(1)]);
        assert!(sim.p.view("b", Family::V6).unwrap().targets.is_empty());
    }

    #[test]
    fn drives_the_policy() {
        use crate::policy::group::{Event, GroupPolicy, MemberSpec};
        let spec = |name: &str| MemberSpec {
            name: name.into(),
            standby: false,
            probing: true,
        };
        let mut policy = GroupPolicy::new("g", vec![spec("a"), spec("b")], true);
        for m in ["a", "b"] {
            policy.handle(Event::LinkUp(m.into()), secs(0)).unwrap();
        }
        let mut sim = pair(always(1.0), outage("a", at(10, 500), at(20, 500)));
        sim.run_until(secs(40));
        // Link down and up at 45 s: the policy waits for the prober's repair.
        sim.p.link_changed("a", false, secs(45));
        sim.run_until(secs(46));
        sim.p.link_changed("a", true, secs(46));
        sim.run_until(secs(60));
        let mut log = Vec::new();
        let mut feed = |policy: &mut GroupPolicy, t: Duration, e: Event| {
            log.extend(policy.handle(e, t).unwrap().iter().map(|n| n.to_string()));
        };
        let link = [
            (secs(45), Event::LinkDown("a".into())),
            (secs(46), Event::LinkUp("a".into())),
        ];
        let mut all: Vec<(Duration, Event)> = sim
            .events
            .iter()
            .map(|(t, e)| match e {
                ProberEvent::Failure(m) => (*t, Event::ProbeFailure(m.clone())),
                ProberEvent::Repair(m) => (*t, Event::ProbeRepair(m.clone())),
                other => panic!("{other}"),
            })
            .chain(link)
            .collect();
        all.sort_by_key(|e| e.0);
        for (t, e) in all {
            feed(&mut policy, t, e);
        }
        assert_eq!(
            log,
            [
                "IP interface failure detected on a of group g",
                "IP interface repair detected on a of group g",
                "The link has gone down on a",
                "IP interface failure detected on a of group g",
                "The link has come up on a",
                "IP interface repair detected on a of group g",
            ]
        );
        // Ten fresh probes after the link came back: 46..=55, the last
        // answered at 55.010.
        assert_eq!(sim.events.last().unwrap(), &(at(55, 10), repair("a")));
    }
}
