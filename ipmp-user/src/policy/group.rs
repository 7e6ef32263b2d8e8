//! The member and group state machine of one IPMP group (README "How it
//! works", Policy; in.mpathd's `mpd_tables.c` and `mpd_probe.c`): link,
//! probe and operator events in; member and group states, the active set,
//! the cast member and in.mpathd's log lines out.
//!
//! A member is *usable* when it is present in the kernel, its link is up, it
//! is administratively up, not failed and not offline. Failure comes from
//! link down, removal from the kernel, or the prober ([`Event::ProbeFailure`]);
//! repair from link up (members without probing) or the prober
//! ([`Event::ProbeRepair`], members with probing).
//!
//! The *active* members carry the traffic. A group wants as many active
//! members as it has non-standby members (at least one):
//! - usable non-standby members are active, except those *held back*
//!   because they were repaired while `failback = false`;
//! - a standby member is activated while fewer members than wanted are
//!   active, and deactivated again once enough non-standby members are;
//! - a held-back member is activated only in place of an active member that
//!   fails or goes offline (when no standby can be), as in.mpathd does.
//!
//! Log lines ([`Notice`]), as in.mpathd gives them: link down and up on
//! every change of a reported link; interface failure when a usable member
//! stops being usable (for any reason but offline) while another stays
//! usable, otherwise the group failure line says it; interface repair when
//! a failed member becomes usable; the group lines when the group becomes
//! failed or stops being failed. A member's first report is no change.
//!
//! Time is a [`Duration`] since any fixed origin, passed with every event;
//! the only timer is anti-flapping's, which [`GroupPolicy::next_deadline`]
//! exposes and [`Event::Tick`] serves.
//!
//! Expected from the caller: at start-up, report every member once (its link
//! state, or [`Event::Removed`] when it is missing), because the "all
//! unusable" notice waits until no member's state is unknown; and, for a
//! member with probing, send [`Event::ProbeRepair`] whenever the probes show
//! it working after a link down, a removal or an online (in.mpathd clears
//! its probe history on link down, so acknowledged probes are counted anew).
use std::time::Duration;

pub use super::notice::{Notice, PolicyError};
use crate::model::{
    GroupState, GroupStatus, LinkState, MemberFlags, MemberState, MemberStatus, ProbeState,
};

/// Link-ups remembered per member for anti-flapping (*Solaris* LINK_UP_PERMIN).
pub const LINK_UP_HISTORY: usize = 2;
/// A link-up within this long of the older remembered one is flapping, and
/// the link must then stay up this long before the member is repaired
/// (*Solaris*: one minute).
pub const FLAP_WINDOW: Duration = Duration::from_secs(60);

/// A member as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSpec {
    /// Interface name.
    pub name: String,
    /// Carries traffic only in place of a failed or offline member.
    pub standby: bool,
    /// Has probe-based failure detection: link up alone does not repair it.
    pub probing: bool,
}

/// What ipmpd decided about a member, kept across its restarts (in the
/// member's pinned record): a restarted ipmpd starts from it, so that a
/// decision stays and no transition is logged that did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kept {
    pub offline: bool,
    /// The probes' verdict was failure (and no repair since).
    pub probe_failed: bool,
    pub link: LinkState,
    /// Usable but held back by `failback = false`.
    pub held_back: bool,
    /// The group's failure was announced and no member was usable since.
    pub failure_announced: bool,
    /// Carries traffic; and failed (for any reason). Derived from the
    /// rest, kept for whoever reads the record (not restored).
    pub active: bool,
    pub failed: bool,
}

/// Something that happened to a member (named by interface), or the timer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Carrier is up (also: the interface is there).
    LinkUp(String),
    /// Carrier is down (also: the interface is there). A failure at once.
    LinkDown(String),
    /// The interface vanished from the kernel: failed, link down, flag `d`.
    Removed(String),
    /// The interface exists again; its link state is unknown until the
    /// link event that follows.
    Appeared(String),
    /// Administratively down (`ip link set IF down`): not usable, flag `d`.
    AdminDown(String),
    AdminUp(String),
    /// The prober saw the member fail (lost probes).
    ProbeFailure(String),
    /// The prober saw the member work (acknowledged probes).
    ProbeRepair(String),
    /// Operator: take the member offline (if_mpadm -d).
    Offline(String),
    /// Operator: bring the member back online (if_mpadm -r).
    Online(String),
    /// The deadline given by [`GroupPolicy::next_deadline`] has come.
    Tick,
}

/// Whether the kernel has the interface, as far as we were told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Presence {
    /// Nothing reported yet: the member's state is unknown.
    Unreported,
    Present,
    Missing,
}

#[derive(Debug)]
struct Member {
    spec: MemberSpec,
    presence: Presence,
    link: LinkState,
    admin_up: bool,
    /// Probes show it working. Starts true (as in.mpathd, a member is
    /// trusted until probes say otherwise, so a restart moves no traffic);
    /// cleared by what invalidates earlier probes: link down, removal,
    /// offline. Ignored on a member without probing.
    probe_ok: bool,
    offline: bool,
    /// Anti-flapping holds repair until this time.
    flap_until: Option<Duration>,
    /// The flapping notice was given and repair has not happened since
    /// (in.mpathd says it once per episode).
    flap_reported: bool,
    /// Times of the last link-ups, oldest first.
    link_ups: [Option<Duration>; LINK_UP_HISTORY],
    /// Has been usable at least once: its first time is no repair, so
    /// failback does not apply (in.mpathd's PI_INIT).
    ever_usable: bool,
    /// In the active set.
    active: bool,
    /// Held back by `failback = false` (in.mpathd's IFF_INACTIVE on a
    /// non-standby interface).
    held_back: bool,
    /// A previous ipmpd held it back: it stays back when first usable.
    kept_held_back: bool,
}

impl Member {
    fn new(spec: MemberSpec) -> Self {
        Member {
            spec,
            presence: Presence::Unreported,
            link: LinkState::Unknown,
            admin_up: true,
            probe_ok: true,
            offline: false,
            flap_until: None,
            flap_reported: false,
            link_ups: [None; LINK_UP_HISTORY],
            ever_usable: false,
            active: false,
            held_back: false,
            kept_held_back: false,
        }
    }

    fn usable(&self) -> bool {
        self.presence == Presence::Present
            && self.link == LinkState::Up
            && self.admin_up
            && !self.offline
            && self.flap_until.is_none()
            && (self.probe_ok || !self.spec.probing)
    }

    fn state(&self) -> MemberState {
        if self.offline {
            MemberState::Offline
        } else if self.usable() {
            MemberState::Ok
        } else if self.presence == Presence::Unreported {
            MemberState::Unknown
        } else {
            MemberState::Failed
        }
    }

    /// Carrier is up. Only a change counts: the first report, or the one
    /// after the interface reappeared, is no link-up (as in.mpathd).
    fn link_up(&mut self, now: Duration, notices: &mut Vec<Notice>, group: &str) {
        self.presence = Presence::Present;
        if self.link == LinkState::Down {
            notices.push(Notice::LinkUp {
                group: group.into(),
                member: self.spec.name.clone(),
            });
            self.link_came_up(now, notices, group);
        }
        self.link = LinkState::Up;
    }

    /// Carrier is down: failed at once, and earlier probes count no more.
    fn link_down(&mut self, notices: &mut Vec<Notice>, group: &str) {
        self.presence = Presence::Present;
        if self.link == LinkState::Up {
            notices.push(Notice::LinkDown {
                group: group.into(),
                member: self.spec.name.clone(),
            });
        }
        self.link = LinkState::Down;
        self.flap_until = None;
        self.probe_ok = false;
    }

    /// The interface vanished from the kernel.
    fn removed(&mut self) {
        self.presence = Presence::Missing;
        self.link = LinkState::Down;
        self.flap_until = None;
        self.probe_ok = false;
    }

    /// The interface exists (again): when it is a new one, what we knew of
    /// the old one is void.
    fn appeared(&mut self) {
        if self.presence != Presence::Present {
            self.presence = Presence::Present;
            self.link = LinkState::Unknown;
            self.admin_up = true;
        }
    }

    /// A link-up seen at `now`: anti-flapping (members without probing
    /// only; with probing the probes decide) and the history.
    fn link_came_up(&mut self, now: Duration, notices: &mut Vec<Notice>, group: &str) {
        let flapping = !self.spec.probing
            && self.link_ups[0].is_some_and(|older| now.saturating_sub(older) <= FLAP_WINDOW);
        if flapping {
            self.flap_until = Some(now + FLAP_WINDOW);
            if !self.flap_reported {
                self.flap_reported = true;
                notices.push(Notice::LinkFlapping {
                    group: group.into(),
                    member: self.spec.name.clone(),
                });
            }
        } else {
            self.flap_reported = false;
        }
        self.link_ups.rotate_left(1);
        self.link_ups[LINK_UP_HISTORY - 1] = Some(now);
    }
}

/// One group's policy state. See the module documentation for the rules.
#[derive(Debug)]
pub struct GroupPolicy {
    name: String,
    failback: bool,
    members: Vec<Member>,
    /// Index of the cast member.
    cast: Option<usize>,
    /// "All IP interfaces ... are now unusable" was said and no member has
    /// been usable since.
    failure_announced: bool,
}

impl GroupPolicy {
    /// A group whose members (in configuration order, names unique) are
    /// not yet reported: state unknown, link unknown, not active.
    pub fn new(group: &str, members: Vec<MemberSpec>, failback: bool) -> Self {
        GroupPolicy {
            name: group.into(),
            failback,
            members: members.into_iter().map(Member::new).collect(),
            cast: None,
            failure_announced: false,
        }
    }

    /// Applies one event at time `now` and returns the log lines it causes,
    /// in order. On error nothing changed.
    pub fn handle(&mut self, event: Event, now: Duration) -> Result<Vec<Notice>, PolicyError> {
        let before: Vec<MemberState> = self.members.iter().map(Member::state).collect();
        let had_active = self.members.iter().any(|m| m.active);
        let mut notices = Vec::new();
        let onlined = self.apply(event, now, &mut notices)?;
        self.settle(&before, had_active, onlined, 0, &mut notices);
        Ok(notices)
    }

    /// What one event changes of the members, with the log lines it says
    /// by itself. Returns the member it brought online, if any.
    fn apply(
        &mut self,
        event: Event,
        now: Duration,
        notices: &mut Vec<Notice>,
    ) -> Result<Option<usize>, PolicyError> {
        let group = self.name.clone();
        match event {
            Event::Tick => self.end_flapping(now),
            Event::LinkUp(name) => self.member_mut(&name)?.link_up(now, notices, &group),
            Event::LinkDown(name) => self.member_mut(&name)?.link_down(notices, &group),
            Event::Removed(name) => self.member_mut(&name)?.removed(),
            Event::Appeared(name) => self.member_mut(&name)?.appeared(),
            Event::AdminDown(name) => self.member_mut(&name)?.admin_up = false,
            Event::AdminUp(name) => self.member_mut(&name)?.admin_up = true,
            Event::ProbeFailure(name) => self.member_mut(&name)?.probe_ok = false,
            Event::ProbeRepair(name) => self.member_mut(&name)?.probe_ok = true,
            Event::Offline(name) => self.take_offline(name, notices)?,
            Event::Online(name) => return self.bring_online(name, notices),
        }
        Ok(None)
    }

    /// The timer: anti-flapping holds that have run out end.
    fn end_flapping(&mut self, now: Duration) {
        for m in &mut self.members {
            if m.flap_until.is_some_and(|until| until <= now) {
                m.flap_until = None;
                m.flap_reported = false;
            }
        }
    }

    /// if_mpadm -d: refused when no other member is usable.
    fn take_offline(&mut self, name: String, notices: &mut Vec<Notice>) -> Result<(), PolicyError> {
        let i = self.index(&name)?;
        if self.members[i].offline {
            return Ok(());
        }
        let others_usable = self
            .members
            .iter()
            .enumerate()
            .any(|(j, m)| j != i && m.usable());
        if !others_usable {
            return Err(PolicyError::OfflineRefused { member: name });
        }
        let m = &mut self.members[i];
        m.offline = true;
        m.probe_ok = false;
        notices.push(Notice::TakenOffline {
            group: self.name.clone(),
            member: name,
        });
        Ok(())
    }

    /// if_mpadm -r. Returns the member when it was offline.
    fn bring_online(
        &mut self,
        name: String,
        notices: &mut Vec<Notice>,
    ) -> Result<Option<usize>, PolicyError> {
        let i = self.index(&name)?;
        if !self.members[i].offline {
            return Ok(None);
        }
        self.members[i].offline = false;
        notices.push(Notice::BroughtOnline {
            group: self.name.clone(),
            member: name,
        });
        Ok(Some(i))
    }

    /// When [`Event::Tick`] must be delivered next, if ever.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.members.iter().filter_map(|m| m.flap_until).min()
    }

    /// Indices (into the member list, configuration order) of the active members.
    pub fn active_members(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| self.members[i].active)
            .collect()
    }

    /// The cast member: the first active member, kept while it stays active
    /// so that multicast memberships move only when they must.
    pub fn cast_member(&self) -> Option<usize> {
        self.cast
    }

    /// The members' configuration, in order.
    pub fn members(&self) -> impl ExactSizeIterator<Item = &MemberSpec> {
        self.members.iter().map(|m| &m.spec)
    }

    /// Ok when every member is usable, failed when none is, else degraded.
    pub fn state(&self) -> GroupState {
        let usable = self.members.iter().filter(|m| m.usable()).count();
        if usable == 0 {
            GroupState::Failed
        } else if usable == self.members.len() {
            GroupState::Ok
        } else {
            GroupState::Degraded
        }
    }

    /// The ipmpstat view of the group. The policy does not know the FDT,
    /// targets or hardware addresses: `fdt_ms` is `None`, the `h` flag is
    /// never set and PROBE is never `unknown`; ipmpd fills those in.
    pub fn status(&self) -> GroupStatus {
        let members = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let cast = self.cast == Some(i);
                let state = m.state();
                MemberStatus {
                    name: m.spec.name.clone(),
                    active: m.active,
                    flags: MemberFlags {
                        inactive: m.usable() && !m.active,
                        standby: m.spec.standby,
                        mcast4: cast,
                        bcast4: cast,
                        mcast6: cast,
                        down: !m.admin_up || m.presence == Presence::Missing,
                        dup_hwaddr: false,
                    },
                    link: m.link,
                    probe: if !m.spec.probing {
                        ProbeState::Disabled
                    } else if state == MemberState::Failed {
                        ProbeState::Failed
                    } else {
                        ProbeState::Ok
                    },
                    state,
                    // The prober fills this in.
                    probing: Vec::new(),
                    xdp: None,
                }
            })
            .collect();
        GroupStatus {
            name: self.name.clone(),
            state: self.state(),
            fdt_ms: None,
            members,
            addresses: Vec::new(),
        }
    }

    /// What a restarted ipmpd needs to know of member `i`'s decisions.
    pub fn kept(&self, i: usize) -> Kept {
        let m = &self.members[i];
        Kept {
            offline: m.offline,
            probe_failed: m.spec.probing && !m.probe_ok,
            link: m.link,
            held_back: m.held_back && m.usable(),
            failure_announced: self.failure_announced,
            active: m.active,
            failed: m.state() == MemberState::Failed,
        }
    }

    /// Member `i`'s state (ipmpstat -i STATE), without the whole status.
    pub fn member_state(&self, i: usize) -> MemberState {
        self.members[i].state()
    }

    /// Takes over what a previous ipmpd decided about member `name`, before
    /// the member is first reported: nothing is logged, and the reports
    /// that follow log only what changed since (a link that went down
    /// while no ipmpd ran, say).
    pub fn restore(&mut self, name: &str, kept: Kept) -> Result<(), PolicyError> {
        self.failure_announced |= kept.failure_announced;
        let m = self.member_mut(name)?;
        m.offline = kept.offline;
        m.probe_ok = !(kept.probe_failed || kept.offline);
        m.link = kept.link;
        m.kept_held_back = kept.held_back;
        // It was usable under the previous ipmpd: failback rules apply.
        m.ever_usable = kept.held_back || kept.link == LinkState::Up;
        Ok(())
    }

    /// Changes the failback setting (reload); it applies to later repairs.
    pub fn set_failback(&mut self, failback: bool) {
        self.failback = failback;
    }

    /// Adds a member (configuration reload) at the end, not yet reported.
    pub fn add_member(&mut self, spec: MemberSpec) -> Result<(), PolicyError> {
        if self.index(&spec.name).is_ok() {
            return Err(PolicyError::DuplicateMember {
                group: self.name.clone(),
                member: spec.name,
            });
        }
        self.members.push(Member::new(spec));
        Ok(())
    }

    /// Removes a member (configuration reload). Later members' indices
    /// shift down by one. Returns the log lines, as [`Self::handle`].
    pub fn remove_member(&mut self, name: &str) -> Result<Vec<Notice>, PolicyError> {
        let i = self.index(name)?;
        let mut before: Vec<MemberState> = self.members.iter().map(Member::state).collect();
        let had_active = self.members.iter().any(|m| m.active);
        let lost = usize::from(self.members.remove(i).active);
        before.remove(i);
        self.cast = match self.cast {
            Some(c) if c == i => None,
            Some(c) if c > i => Some(c - 1),
            c => c,
        };
        let mut notices = Vec::new();
        self.settle(&before, had_active, None, lost, &mut notices);
        Ok(notices)
    }

    fn index(&self, name: &str) -> Result<usize, PolicyError> {
        self.members
            .iter()
            .position(|m| m.spec.name == name)
            .ok_or_else(|| PolicyError::UnknownMember {
                group: self.name.clone(),
                member: name.into(),
            })
    }

    fn member_mut(&mut self, name: &str) -> Result<&mut Member, PolicyError> {
        let i = self.index(name)?;
        Ok(&mut self.members[i])
    }

    /// After an event changed members: failback, the active set, the cast
    /// member and the failure, repair and group notices. `before` holds the
    /// members' states before the event, `had_active` whether any member
    /// was active, `onlined` the member the event brought online, `lost`
    /// active members that left the configuration (replaced like failed ones).
    fn settle(
        &mut self,
        before: &[MemberState],
        had_active: bool,
        onlined: Option<usize>,
        mut lost: usize,
        notices: &mut Vec<Notice>,
    ) {
        let active_before = self.members.iter().filter(|m| m.active).count() + lost;
        let failback = self.failback;
        let mut newly_usable = Vec::new();
        for (i, m) in self.members.iter_mut().enumerate() {
            let was_usable = before[i] == MemberState::Ok;
            if m.usable() && !was_usable {
                // failback = false: a repaired non-standby member stays back,
                // unless the group had no active member or this is its first
                // time or the operator just brought it online (in.mpathd).
                m.held_back = std::mem::take(&mut m.kept_held_back)
                    || (!m.spec.standby
                        && !failback
                        && m.ever_usable
                        && onlined != Some(i)
                        && had_active);
                m.ever_usable = true;
                newly_usable.push(i);
            } else if !m.usable() {
                lost += usize::from(m.active);
                m.active = false;
                m.held_back = false;
            }
        }
        self.choose_active(active_before, lost);

        let usable_now = self.members.iter().filter(|m| m.usable()).count();
        for (i, m) in self.members.iter().enumerate() {
            let member = m.spec.name.clone();
            let group = self.name.clone();
            match (before[i], m.state()) {
                // With no member left this is a group failure, which the
                // group notice reports instead (in.mpathd).
                (MemberState::Ok, MemberState::Failed) if usable_now > 0 => {
                    notices.push(Notice::InterfaceFailure { group, member })
                }
                (MemberState::Failed, MemberState::Ok) => {
                    notices.push(Notice::InterfaceRepair { group, member })
                }
                _ => {}
            }
        }
        let unknown = self
            .members
            .iter()
            .any(|m| m.state() == MemberState::Unknown);
        if usable_now == 0 && !self.failure_announced && !unknown {
            self.failure_announced = true;
            notices.push(Notice::GroupFailure {
                group: self.name.clone(),
            });
        } else if usable_now > 0 && self.failure_announced {
            self.failure_announced = false;
            // Announced failure means no member was usable before this
            // event, so some member has just become usable.
            if let Some(&i) = newly_usable.first() {
                let member = self.members[i].spec.name.clone();
                notices.push(Notice::GroupRepair {
                    group: self.name.clone(),
                    member,
                });
            }
        }

        if !self.cast.is_some_and(|c| self.members[c].active) {
            self.cast = self.members.iter().position(|m| m.active);
        }
    }

    /// Recomputes the active set from the members' usability. `active_before`
    /// counts the active members before the event, `lost` those that left.
    fn choose_active(&mut self, active_before: usize, lost: usize) {
        let want = self
            .members
            .iter()
            .filter(|m| !m.spec.standby)
            .count()
            .max(1);
        for m in &mut self.members {
            if m.usable() && !m.spec.standby && !m.held_back {
                m.active = true;
            }
        }
        let mut count = self.members.iter().filter(|m| m.active).count();
        // Too many: standby members step back, the last configured first.
        for m in self.members.iter_mut().rev() {
            if count <= want {
                break;
            }
            if m.active && m.spec.standby {
                m.active = false;
                count -= 1;
            }
        }
        // Too few: standby members step in, the first configured first.
        for m in &mut self.members {
            if count >= want {
                break;
            }
            if m.usable() && m.spec.standby && !m.active {
                m.active = true;
                count += 1;
            }
        }
        // Held-back members replace lost active members that no standby
        // could, and never leave the group without an active member; but
        // not while members are still unreported (a restart reports them
        // in turn, and the next may be the one that was active).
        if self
            .members
            .iter()
            .any(|m| m.presence == Presence::Unreported)
        {
            return;
        }
        let floor = if lost > 0 { active_before } else { 1 }.min(want);
        for m in &mut self.members {
            if count >= floor {
                break;
            }
            if m.usable() && m.held_back {
                m.held_back = false;
                m.active = true;
                count += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, standby, probing)
    fn policy(members: &[(&str, bool, bool)], failback: bool) -> GroupPolicy {
        let specs = members
            .iter()
            .map(|&(name, standby, probing)| MemberSpec {
                name: name.into(),
                standby,
                probing,
            })
            .collect();
        GroupPolicy::new("g", specs, failback)
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Applies the event and returns the notices as log lines.
    fn ev(p: &mut GroupPolicy, t: f64, e: Event) -> Vec<String> {
        p.handle(e, secs(t))
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn up(name: &str) -> Event {
        Event::LinkUp(name.into())
    }

    fn down(name: &str) -> Event {
        Event::LinkDown(name.into())
    }

    /// Reports every member's link up at time 0 (start-up).
    fn start(p: &mut GroupPolicy) {
        let names: Vec<String> = p.members().map(|m| m.name.clone()).collect();
        for n in names {
            assert_eq!(ev(p, 0.0, Event::LinkUp(n)), Vec::<String>::new());
        }
    }

    fn active(p: &GroupPolicy) -> Vec<String> {
        let names: Vec<&MemberSpec> = p.members().collect();
        p.active_members()
            .into_iter()
            .map(|i| names[i].name.clone())
            .collect()
    }

    fn member(p: &GroupPolicy, name: &str) -> MemberStatus {
        p.status()
            .members
            .into_iter()
            .find(|m| m.name == name)
            .unwrap()
    }

    #[test]
    fn before_any_report_everything_is_unknown() {
        let p = policy(&[("a", false, true), ("b", false, false)], true);
        let s = p.status();
        assert_eq!((s.state, s.fdt_ms), (GroupState::Failed, None));
        for m in &s.members {
            assert_eq!(
                (m.state, m.link, m.active),
                (MemberState::Unknown, LinkState::Unknown, false)
            );
            assert_eq!(m.flags, MemberFlags::default());
        }
        assert_eq!(
            (s.members[0].probe, s.members[1].probe),
            (ProbeState::Ok, ProbeState::Disabled)
        );
        assert_eq!((p.cast_member(), p.next_deadline()), (None, None));
    }

    #[test]
    fn startup_activates_non_standby_members_quietly() {
        let mut p = policy(
            &[("a", false, true), ("b", false, false), ("s", true, false)],
            true,
        );
        start(&mut p);
        assert_eq!(active(&p), ["a", "b"]);
        assert_eq!(p.state(), GroupState::Ok);
        assert_eq!(p.cast_member(), Some(0));
        let s = member(&p, "s");
        assert!(s.flags.inactive && s.flags.standby && !s.active);
        assert_eq!(s.state, MemberState::Ok);
    }

    #[test]
    fn standby_member_only_group_activates_one() {
        let mut p = policy(&[("s1", true, false), ("s2", true, false)], true);
        start(&mut p);
        assert_eq!(active(&p), ["s1"]);
        assert!(member(&p, "s2").flags.inactive);
    }

    #[test]
    fn standby_activated_when_active_member_fails() {
        let mut p = policy(
            &[("a", false, false), ("b", false, false), ("s", true, false)],
            true,
        );
        start(&mut p);
        assert_eq!(
            ev(&mut p, 1.0, down("a")),
            [
                "The link has gone down on a",
                "IP interface failure detected on a of group g"
            ]
        );
        assert_eq!(active(&p), ["b", "s"]);
        assert_eq!(p.state(), GroupState::Degraded);
        assert_eq!(member(&p, "a").state, MemberState::Failed);
    }

    #[test]
    fn standby_returns_to_inactive_after_failback_repair() {
        let mut p = policy(
            &[("a", false, false), ("b", false, false), ("s", true, false)],
            true,
        );
        start(&mut p);
        ev(&mut p, 1.0, down("a"));
        assert_eq!(
            ev(&mut p, 2.0, up("a")),
            [
                "The link has come up on a",
                "IP interface repair detected on a of group g"
            ]
        );
        assert_eq!(active(&p), ["a", "b"]);
        assert!(member(&p, "s").flags.inactive);
        assert_eq!(p.state(), GroupState::Ok);
    }

    #[test]
    fn failback_false_keeps_repaired_member_inactive() {
        let mut p = policy(
            &[("a", false, false), ("b", false, false), ("s", true, false)],
            false,
        );
        start(&mut p);
        ev(&mut p, 1.0, down("a"));
        ev(&mut p, 2.0, up("a"));
        assert_eq!(active(&p), ["b", "s"]);
        let a = member(&p, "a");
        assert!(a.flags.inactive && !a.active);
        assert_eq!(a.state, MemberState::Ok);
        assert_eq!(p.state(), GroupState::Ok);
        // It steps in only in place of a failing active member.
        ev(&mut p, 3.0, down("b"));
        assert_eq!(active(&p), ["a", "s"]);
        assert!(!member(&p, "a").flags.inactive);
    }

    #[test]
    fn failback_false_without_standby_waits_for_a_failure() {
        let mut p = policy(&[("a", false, false), ("b", false, false)], false);
        start(&mut p);
        ev(&mut p, 1.0, down("a"));
        ev(&mut p, 2.0, up("a"));
        assert_eq!(active(&p), ["b"]);
        ev(&mut p, 3.0, Event::Offline("b".into()));
        assert_eq!(active(&p), ["a"]);
    }

    #[test]
    fn failback_false_repaired_member_active_when_group_had_failed() {
        let mut p = policy(&[("a", false, false), ("b", false, false)], false);
        start(&mut p);
        ev(&mut p, 1.0, down("a"));
        ev(&mut p, 2.0, down("b"));
        assert_eq!(p.state(), GroupState::Failed);
        ev(&mut p, 3.0, up("a"));
        assert_eq!(active(&p), ["a"]);
        ev(&mut p, 4.0, up("b"));
        assert_eq!(active(&p), ["a"]);
        assert!(member(&p, "b").flags.inactive);
    }

    /// Flaps `a` so that its link-ups (changes from down) are at 2 s and 4 s.
    fn flapped() -> GroupPolicy {
        let mut p = policy(&[("a", false, false), ("b", false, false)], true);
        start(&mut p);
        for (d, u) in [(1.0, 2.0), (3.0, 4.0)] {
            ev(&mut p, d, down("a"));
            assert_eq!(
                ev(&mut p, u, up("a")),
                [
                    "The link has come up on a",
                    "IP interface repair detected on a of group g"
                ]
            );
        }
        ev(&mut p, 5.0, down("a"));
        p
    }

    const FLAPPING: &str = "The link has come up on a more than 2 times in the last minute; \
                            disabling repair until it stabilizes";

    #[test]
    fn anti_flap_holds_repair_until_the_link_is_stable() {
        let mut p = flapped();
        // Third link-up at 10 s, within 60 s of the one at 2 s.
        assert_eq!(
            ev(&mut p, 10.0, up("a")),
            ["The link has come up on a", FLAPPING]
        );
        assert_eq!(member(&p, "a").state, MemberState::Failed);
        assert_eq!(member(&p, "a").link, LinkState::Up);
        assert_eq!(active(&p), ["b"]);
        assert_eq!(p.next_deadline(), Some(secs(70.0)));
        assert!(ev(&mut p, 69.9, Event::Tick).is_empty());
        assert_eq!(active(&p), ["b"]);
        assert_eq!(
            ev(&mut p, 70.0, Event::Tick),
            ["IP interface repair detected on a of group g"]
        );
        assert_eq!(active(&p), ["a", "b"]);
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn anti_flap_hold_ends_when_the_link_goes_down() {
        let mut p = flapped();
        ev(&mut p, 10.0, up("a"));
        assert_eq!(ev(&mut p, 30.0, down("a")), ["The link has gone down on a"]);
        assert_eq!(p.next_deadline(), None);
        assert!(ev(&mut p, 70.0, Event::Tick).is_empty());
        assert_eq!(member(&p, "a").state, MemberState::Failed);
        // Up again at 40 s, within 60 s of the link-up at 4 s: held again,
        // without repeating the message; the stale deadline does nothing.
        assert_eq!(ev(&mut p, 40.0, up("a")), ["The link has come up on a"]);
        assert_eq!(p.next_deadline(), Some(secs(100.0)));
        assert!(ev(&mut p, 70.0, Event::Tick).is_empty());
        assert_eq!(
            ev(&mut p, 100.0, Event::Tick),
            ["IP interface repair detected on a of group g"]
        );
    }

    #[test]
    fn anti_flap_window_is_sixty_seconds_from_the_older_link_up() {
        // Link-ups at 2 s and 4 s; a third at 64 s is 62 s after the older.
        let mut p = flapped();
        assert_eq!(
            ev(&mut p, 64.0, up("a")),
            [
                "The link has come up on a",
                "IP interface repair detected on a of group g"
            ]
        );
        // Exactly 60 s after the older one is still within the window.
        let mut p = flapped();
        assert_eq!(
            ev(&mut p, 62.0, up("a")),
            ["The link has come up on a", FLAPPING]
        );
    }

    #[test]
    fn probing_member_needs_probe_repair_after_link_up() {
        let mut p = policy(&[("a", false, true), ("b", false, false)], true);
        start(&mut p);
        ev(&mut p, 1.0, down("a"));
        assert_eq!(ev(&mut p, 2.0, up("a")), ["The link has come up on a"]);
        assert_eq!(member(&p, "a").state, MemberState::Failed);
        assert_eq!(member(&p, "a").probe, ProbeState::Failed);
        assert_eq!(active(&p), ["b"]);
        assert_eq!(
            ev(&mut p, 3.0, Event::ProbeRepair("a".into())),
            ["IP interface repair detected on a of group g"]
        );
        assert_eq!(active(&p), ["a", "b"]);
        // No anti-flapping with probing: the probes decide.
        for t in [4.0, 6.0, 8.0] {
            ev(&mut p, t, down("a"));
            assert_eq!(ev(&mut p, t + 1.0, up("a")), ["The link has come up on a"]);
            ev(&mut p, t + 1.5, Event::ProbeRepair("a".into()));
        }
        assert_eq!(active(&p), ["a", "b"]);
    }

    #[test]
    fn probe_failure_and_repair() {
        let mut p = policy(&[("a", false, true), ("b", false, false)], true);
        start(&mut p);
        assert_eq!(
            ev(&mut p, 1.0, Event::ProbeFailure("a".into())),
            ["IP interface failure detected on a of group g"]
        );
        let a = member(&p, "a");
        assert_eq!(
            (a.state, a.probe, a.link, a.active),
            (
                MemberState::Failed,
                ProbeState::Failed,
                LinkState::Up,
                false
            )
        );
        assert_eq!(member(&p, "b").probe, ProbeState::Disabled);
        assert_eq!(
            ev(&mut p, 2.0, Event::ProbeRepair("a".into())),
            ["IP interface repair detected on a of group g"]
        );
        assert_eq!(member(&p, "a").probe, ProbeState::Ok);
        assert_eq!(active(&p), ["a", "b"]);
    }

    #[test]
    fn offline_refused_for_the_last_usable_member() {
        let mut p = policy(&[("a", false, false), ("b", false, false)], true);
        start(&mut p);
        ev(&mut p, 1.0, down("b"));
        let err = p.handle(Event::Offline("a".into()), secs(2.0)).unwrap_err();
        assert_eq!(err, PolicyError::OfflineRefused { member: "a".into() });
        assert_eq!(
            err.to_string(),
            "cannot offline a: no other functioning interfaces are in its IPMP group"
        );
        assert_eq!(member(&p, "a").state, MemberState::Ok);
        assert_eq!(active(&p), ["a"]);
    }

    #[test]
    fn offline_and_online() {
        let mut p = policy(&[("a", false, false), ("b", false, false)], false);
        start(&mut p);
        assert_eq!(
            ev(&mut p, 1.0, Event::Offline("a".into())),
            ["Interface a taken offline"]
        );
        assert_eq!(member(&p, "a").state, MemberState::Offline);
        assert_eq!(
            (active(&p), p.state()),
            (vec!["b".to_string()], GroupState::Degraded)
        );
        assert!(ev(&mut p, 2.0, Event::Offline("a".into())).is_empty());
        // Online puts it back to work even with failback = false (in.mpathd).
        assert_eq!(
            ev(&mut p, 3.0, Event::Online("a".into())),
            ["Interface a brought online"]
        );
        assert_eq!(
            (active(&p), p.state()),
            (vec!["a".to_string(), "b".to_string()], GroupState::Ok)
        );
        assert!(ev(&mut p, 4.0, Event::Online("a".into())).is_empty());
    }

    #[test]
    fn online_probing_member_needs_probe_repair() {
        let mut p = policy(&[("a", false, true), ("b", false, false)], true);
        start(&mut p);
        ev(&mut p, 1.0, Event::Offline("a".into()));
        assert_eq!(
            ev(&mut p, 2.0, Event::Online("a".into())),
            ["Interface a brought online"]
        );
        assert_eq!(member(&p, "a").state, MemberState::Failed);
        assert_eq!(
            ev(&mut p, 3.0, Event::ProbeRepair("a".into())),
            ["IP interface repair detected on a of group g"]
        );
        assert_eq!(active(&p), ["a", "b"]);
    }

    #[test]
    fn group_state_transitions_and_notices() {
        let mut p = policy(&[("a", false, false), ("b", false, false)], true);
        start(&mut p);
        assert_eq!(p.state(), GroupState::Ok);
        ev(&mut p, 1.0, down("a"));
        assert_eq!(p.state(), GroupState::Degraded);
        assert_eq!(
            ev(&mut p, 2.0, down("b")),
            [
                "The link has gone down on b",
                "All IP interfaces in group g are now unusable"
            ]
        );
        assert_eq!((p.state(), p.cast_member()), (GroupState::Failed, None));
        assert!(active(&p).is_empty());
        assert_eq!(
            ev(&mut p, 3.0, up("b")),
            [
                "The link has come up on b",
                "IP interface repair detected on b of group g",
                "At least 1 IP interface (b) in group g is now usable",
            ]
        );
        assert_eq!(p.state(), GroupState::Degraded);
        ev(&mut p, 4.0, up("a"));
        assert_eq!(p.state(), GroupState::Ok);
    }

    #[test]
    fn group_failure_waits_until_every_member_is_reported() {
        let mut p = policy(&[("a", false, false), ("b", false, false)], true);
        assert!(ev(&mut p, 0.0, down("a")).is_empty());
        assert_eq!(member(&p, "a").state, MemberState::Failed);
        assert_eq!(
            ev(&mut p, 0.0, Event::Removed("b".into())),
            ["All IP interfaces in group g are now unusable"]
        );
        let b = member(&p, "b");
        assert_eq!(
            (b.state, b.link, b.flags.down),
            (MemberState::Failed, LinkState::Down, true)
        );
        assert!(ev(&mut p, 5.0, Event::Appeared("b".into())).is_empty());
        let b = member(&p, "b");
        assert_eq!(
            (b.state, b.link, b.flags.down),
            (MemberState::Failed, LinkState::Unknown, false)
        );
        // First link report of the new interface: no link change, a repair.
        assert_eq!(
            ev(&mut p, 6.0, up("b")),
            [
                "IP interface repair detected on b of group g",
                "At least 1 IP interface (b) in group g is now usable"
            ]
        );
    }

    #[test]
    fn removed_member_fails_and_is_adopted_when_it_returns() {
        let mut p = policy(&[("a", false, true), ("b", false, false)], true);
        start(&mut p);
        assert_eq!(
            ev(&mut p, 1.0, Event::Removed("a".into())),
            ["IP interface failure detected on a of group g"]
        );
        assert_eq!(active(&p), ["b"]);
        ev(&mut p, 2.0, Event::Appeared("a".into()));
        assert!(ev(&mut p, 2.0, up("a")).is_empty());
        ev(&mut p, 3.0, Event::ProbeRepair("a".into()));
        assert_eq!(active(&p), ["a", "b"]);
    }

    #[test]
    fn admin_down_member_is_unusable_and_flagged() {
        let mut p = policy(&[("a", false, false), ("b", false, false)], true);
        start(&mut p);
        assert_eq!(
            ev(&mut p, 1.0, Event::AdminDown("a".into())),
            ["IP interface failure detected on a of group g"]
        );
        let a = member(&p, "a");
        assert_eq!(
            (a.flags.down, a.state, a.active),
            (true, MemberState::Failed, false)
        );
        assert_eq!(
            ev(&mut p, 2.0, Event::AdminUp("a".into())),
            ["IP interface repair detected on a of group g"]
        );
        assert!(!member(&p, "a").flags.down);
    }

    #[test]
    fn cast_member_is_kept_while_active() {
        let mut p = policy(
            &[
                ("a", false, false),
                ("b", false, false),
                ("c", false, false),
            ],
            true,
        );
        start(&mut p);
        assert_eq!(p.cast_member(), Some(0));
        ev(&mut p, 1.0, down("a"));
        assert_eq!(p.cast_member(), Some(1));
        ev(&mut p, 2.0, up("a"));
        assert_eq!(p.cast_member(), Some(1));
        let flags: Vec<(bool, bool, bool)> = p
            .status()
            .members
            .iter()
            .map(|m| (m.flags.mcast4, m.flags.bcast4, m.flags.mcast6))
            .collect();
        assert_eq!(
            flags,
            [
                (false, false, false),
                (true, true, true),
                (false, false, false)
            ]
        );
        ev(&mut p, 3.0, down("b"));
        assert_eq!(p.cast_member(), Some(0));
    }

    #[test]
    fn unknown_member_is_an_error() {
        let mut p = policy(&[("a", false, false)], true);
        let err = p.handle(up("x"), secs(0.0)).unwrap_err();
        assert_eq!(err.to_string(), "x is not a member of group g");
        assert!(p.handle(Event::Offline("x".into()), secs(0.0)).is_err());
        assert!(p.remove_member("x").is_err());
    }

    #[test]
    fn members_added_and_removed() {
        let mut p = policy(&[("a", false, false), ("s", true, false)], true);
        start(&mut p);
        assert_eq!(active(&p), ["a"]);
        let dup = MemberSpec {
            name: "a".into(),
            standby: false,
            probing: false,
        };
        assert!(matches!(
            p.add_member(dup),
            Err(PolicyError::DuplicateMember { .. })
        ));
        // The active member leaves the configuration: the standby steps in.
        assert!(p.remove_member("a").unwrap().is_empty());
        assert_eq!(
            (active(&p), p.cast_member()),
            (vec!["s".to_string()], Some(0))
        );
        p.add_member(MemberSpec {
            name: "c".into(),
            standby: false,
            probing: false,
        })
        .unwrap();
        assert_eq!(member(&p, "c").state, MemberState::Unknown);
        assert_eq!(p.state(), GroupState::Degraded);
        ev(&mut p, 1.0, up("c"));
        assert_eq!(active(&p), ["c"]);
        assert_eq!(p.cast_member(), Some(1));
        // Removing the last usable member fails the group.
        ev(&mut p, 2.0, down("s"));
        assert_eq!(
            p.remove_member("c").unwrap(),
            [Notice::GroupFailure { group: "g".into() }]
        );
    }

    /// A restarted ipmpd: offline, probe-failed and held-back members
    /// start where the previous one left them, and nothing is logged.
    #[test]
    fn kept_decisions_are_restored_silently() {
        let mut old = policy(
            &[
                ("a", false, false),
                ("b", false, true),
                ("c", false, false),
                ("d", false, false),
            ],
            false,
        );
        start(&mut old);
        ev(&mut old, 1.0, Event::Offline("a".into()));
        ev(&mut old, 2.0, Event::ProbeFailure("b".into()));
        ev(&mut old, 3.0, down("c"));
        ev(&mut old, 4.0, up("c"));
        assert_eq!(active(&old), ["d"]);
        let kept: Vec<Kept> = (0..4).map(|i| old.kept(i)).collect();
        assert!(kept[0].offline && kept[1].probe_failed && kept[2].held_back);

        let mut new = policy(
            &[
                ("a", false, false),
                ("b", false, true),
                ("c", false, false),
                ("d", false, false),
            ],
            false,
        );
        for (name, k) in ["a", "b", "c", "d"].iter().zip(&kept) {
            new.restore(name, *k).unwrap();
        }
        for name in ["a", "b", "c", "d"] {
            assert_eq!(ev(&mut new, 10.0, up(name)), Vec::<String>::new());
        }
        assert_eq!(active(&new), ["d"]);
        let states: Vec<MemberState> = new.status().members.iter().map(|m| m.state).collect();
        assert_eq!(
            states,
            [
                MemberState::Offline,
                MemberState::Failed,
                MemberState::Ok,
                MemberState::Ok
            ]
        );
        // A link that went down while no ipmpd ran is a change to log.
        assert_eq!(
            ev(&mut new, 11.0, down("d")),
            [
                "The link has gone down on d",
                "IP interface failure detected on d of group g"
            ]
        );
    }

    /// All members reported in turn, the first one down: no false group
    /// failure while the others are still unknown.
    #[test]
    fn a_group_failure_known_before_the_restart_is_not_announced_again() {
        let mut old = policy(&[("a", false, false), ("b", false, false)], true);
        ev(&mut old, 0.0, down("a"));
        assert_eq!(
            ev(&mut old, 0.0, down("b")),
            ["All IP interfaces in group g are now unusable"]
        );
        let kept = old.kept(0);
        let mut new = policy(&[("a", false, false), ("b", false, false)], true);
        new.restore("a", kept).unwrap();
        new.restore("b", old.kept(1)).unwrap();
        assert_eq!(ev(&mut new, 5.0, down("a")), Vec::<String>::new());
        assert_eq!(ev(&mut new, 5.0, down("b")), Vec::<String>::new());
        assert_eq!(
            ev(&mut new, 6.0, up("b")),
            [
                "The link has come up on b",
                "IP interface repair detected on b of group g",
                "At least 1 IP interface (b) in group g is now usable"
            ]
        );
    }

    #[test]
    fn notice_wording() {
        let (g, m) = (String::from("g0"), String::from("eth1"));
        let cases = [
            (Notice::LinkDown { group: g.clone(), member: m.clone() }, "The link has gone down on eth1"),
            (Notice::LinkUp { group: g.clone(), member: m.clone() }, "The link has come up on eth1"),
            (
                Notice::LinkFlapping { group: g.clone(), member: m.clone() },
                "The link has come up on eth1 more than 2 times in the last minute; disabling repair until it stabilizes",
            ),
            (
                Notice::InterfaceFailure { group: g.clone(), member: m.clone() },
                "IP interface failure detected on eth1 of group g0",
            ),
            (
                Notice::InterfaceRepair { group: g.clone(), member: m.clone() },
                "IP interface repair detected on eth1 of group g0",
            ),
            (Notice::GroupFailure { group: g.clone() }, "All IP interfaces in group g0 are now unusable"),
            (
                Notice::GroupRepair { group: g.clone(), member: m.clone() },
                "At least 1 IP interface (eth1) in group g0 is now usable",
            ),
            (Notice::TakenOffline { group: g.clone(), member: m.clone() }, "Interface eth1 taken offline"),
            (Notice::BroughtOnline { group: g, member: m }, "Interface eth1 brought online"),
        ];
        for (notice, text) in cases {
            assert_eq!(notice.to_string(), text);
        }
    }
}
