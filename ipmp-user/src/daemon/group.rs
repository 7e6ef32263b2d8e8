//! One IPMP group at run time: wires kernel events into the group's policy
//! and the policy's decisions into the dataplane and the group interface.
use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use aya::programs::XdpMode as KernelXdpMode;
use ipmp_common::{
    data_address_key, FlowTable, Member, ProbeCounts, MAX_BROADCASTS, MAX_MEMBERS, NO_MEMBER,
    SAVED_SYSCTLS,
};
use ipnet::IpNet;
use tokio::sync::broadcast;
use tracing::{debug, error, info, warn, Level};

use crate::{
    config::{DaemonConfig, GroupConfig, MemberConfig, XdpMode},
    control::Feeds,
    dataplane::{Attached, GroupDataplane},
    memberships::{self, HeldMemberships, Memberships},
    metrics::{GroupSource, MemberSource},
    model::{AddressStatus, EventRecord, GroupStatus, MemberState, XdpStatus},
    netlink::{member_table, Change, Link, Netlink},
    notify::PeerNotifier,
    policy::{
        flow_table::{bucket_counts, fail_over, next_table},
        group::{Event, GroupPolicy, MemberSpec, Notice, PolicyError},
        inbound,
    },
    probe::{replies::Replies, socket::monotonic_ns, ProberEvent},
    sysctl,
};
use rtnetlink::packet_route::route::RouteMessage;

use super::{
    lock::{self, GroupLock},
    probing::Probing,
    record, teardown,
};

mod heal;

struct MemberRuntime {
    name: String,
    slot: u8,
    test_address: Option<IpNet>,
    /// The kernel's view; `None` while the interface does not exist.
    link: Option<Link>,
    /// The policy has heard of this interface (seen, or reported missing):
    /// from then on its arrival is a reappearance.
    reported: bool,
    /// Transitions to failed and back to ok, for metrics (kept in the pins).
    failures: u64,
    repairs: u64,
    table: u32,
    /// The record bits last written to the member's pinned record.
    record: u32,
    /// The member's sysctls before ipmpd first changed them (kept in the
    /// record across restarts, restored at teardown).
    saved_sysctls: Option<[u8; SAVED_SYSCTLS]>,
    /// How its XDP program is attached, once it is.
    xdp: Option<XdpStatus>,
}

/// Peer notifications of one data address's binding still to send.
struct PendingNotification {
    address: IpAddr,
    slot: u8,
    left: u32,
    /// When the next one is due, since the group's epoch.
    due: Duration,
}

/// How often the kernel's verdicts on members ipmpd counts as active are
/// read (newly active members' at once).
const TAKEN_OUT_SWEEP: Duration = Duration::from_secs(10);
/// Time between the peer notifications of one binding: repeats are for
/// the peers and switches that missed the first.
const PEER_NOTIFICATION_INTERVAL: Duration = Duration::from_millis(100);
/// How often the group interface's multicast groups are read again, to be
/// held on the cast member (the kernel announces no change of them), the
/// members' groups checked, and the pins (bpffs announces nothing either).
const MEMBERSHIP_REFRESH: Duration = Duration::from_secs(1);
/// After a failed tick (logged), the group's timers wait this long.
const TICK_RETRY: Duration = Duration::from_secs(1);

pub struct Group {
    name: String,
    /// The configuration this group runs with (reload diffs against it).
    config: GroupConfig,
    pin_dir: PathBuf,
    /// The veth peer of the group interface: its admin state is the group
    /// interface's carrier.
    peer: String,
    index: u32,
    policy: GroupPolicy,
    probing: Probing,
    /// Probe replies the kernel timed, per group.
    replies: Replies,
    /// State changes for `ipmpctl events` followers.
    events: broadcast::Sender<EventRecord>,
    dataplane: GroupDataplane,
    members: Vec<MemberRuntime>,
    xdp_mode: XdpMode,
    /// The flow table as last written.
    table: FlowTable,
    /// Inbound binding: the slot of the member each of the configured data
    /// addresses is bound to, as last written.
    bindings: Vec<Option<u8>>,
    notifier: PeerNotifier,
    peer_notifications: u32,
    notifications: Vec<PendingNotification>,
    /// The group interface's multicast groups, held on the cast member so
    /// that inbound multicast is received there.
    cast_groups: HeldMemberships,
    /// The solicited-node groups of the IPv6 data addresses, held on their
    /// bound members, by slot.
    solicited: HashMap<u8, HeldMemberships>,
    /// When the group interface's groups are read next, since the epoch.
    memberships_due: Duration,
    /// The group-wide dataplane settings as last written.
    settings: Option<ipmp_common::GroupConfig>,
    /// The dataplane settings that come from the configuration (and the
    /// secret probe key); `apply` adds the cast member.
    configured: ipmp_common::GroupConfig,
    /// Policy notices waiting to be logged.
    notices: Vec<Notice>,
    carrier: Option<bool>,
    /// When the kernel's verdicts on every active member were last read.
    taken_out_swept: Option<Instant>,
    /// `table` is what the policy computed for its active members (not the
    /// adopted one, nor the link alarm's stopgap).
    table_settled: bool,
    mtu: u32,
    epoch: Instant,
    /// Timers are not served before this (a tick failed).
    retry_at: Option<Instant>,
    /// The group interface's routes as last mirrored: put back if the
    /// interface is deleted (the kernel flushes them with it).
    routes: Vec<RouteMessage>,
    /// No other ipmpd runs this group while this one does.
    _lock: GroupLock,
    /// The group interface was deleted and is not back yet.
    interface_lost: bool,
}

impl Group {
    pub async fn start(
        nl: &Netlink,
        config: &GroupConfig,
        daemon: &DaemonConfig,
        pin_root: &Path,
        probe_key: [u64; 2],
        feeds: Feeds,
    ) -> Result<Group> {
        let name = config.name.clone();
        // Before the group's interface or pins are touched.
        let lock = lock::take_group(&name)?;
        let peer = config.peer_interface();
        let (link, created) = heal::group_interface(nl, config).await?;

        let pin_dir = pin_root.join(&name);
        let mut dataplane = GroupDataplane::load(&pin_dir)?;
        match dataplane.attach_egress(&name)? {
            Attached::Adopted => info!("Adopted the pinned dataplane of group {name}"),
            Attached::New => info!("Attached the egress program to {name}"),
        }
        let table = dataplane.flow_table()?;
        let replies = Replies::new(dataplane.take_probe_replies()?)?;

        // Time zero of the policy and the prober, on both clocks.
        let (epoch, epoch_ns) = (Instant::now(), monotonic_ns());
        let pinned = dataplane.members()?;
        let slots = assign_slots(&pinned, config);
        let bindings = adopt_bindings(&mut dataplane, config, &slots)?;
        // The record a previous ipmpd kept in the pins for this member.
        let kept = |name: &str| {
            pinned
                .iter()
                .find(|(slot, m)| *slot == slots[name] && record::name(m) == name)
                .map_or_else(Member::default, |(_, m)| *m)
        };
        let mut group = Group {
            name,
            config: config.clone(),
            pin_dir,
            peer,
            index: link.index,
            policy: GroupPolicy::new(&config.name, Vec::new(), daemon.failback),
            probing: Probing::new(config, daemon, probe_key, feeds.probes, epoch_ns),
            replies,
            events: feeds.events,
            dataplane,
            members: Vec::new(),
            xdp_mode: daemon.xdp_mode,
            table,
            bindings,
            notifier: PeerNotifier::new()?,
            peer_notifications: daemon.peer_notifications,
            notifications: Vec::new(),
            cast_groups: HeldMemberships::new(),
            solicited: HashMap::new(),
            memberships_due: Duration::ZERO,
            settings: None,
            configured: dataplane_settings(config, probe_key),
            notices: Vec::new(),
            carrier: None,
            taken_out_swept: None,
            table_settled: false,
            mtu: 0,
            epoch,
            retry_at: None,
            routes: Vec::new(),
            _lock: lock,
            interface_lost: false,
        };
        let taken_up: Result<()> = async {
            // Before a new member takes a slot that one of them had.
            group.remove_unconfigured_members(nl).await?;
            // Every member is known before any is reported: a first member
            // found down must not look like the whole group (a false "All
            // IP interfaces ... unusable").
            for m in &config.members {
                group.register_member(m, slots[&m.interface], kept(&m.interface))?;
            }
            for i in 0..group.members.len() {
                group.take_in_hand(nl, i).await?;
            }
            group.apply(nl, Instant::now()).await?;
            group.mirror_routes(nl).await
        }
        .await;
        if let Err(e) = taken_up {
            // A group made by this attempt leaves nothing behind (a reload
            // that adds it is then undone cleanly); an adopted one keeps
            // its pinned dataplane forwarding.
            if created {
                if let Err(undo) = group.teardown(nl).await {
                    warn!("Removing the group that failed to start: {undo:#}");
                }
            }
            return Err(e);
        }
        Ok(group)
    }

    /// Adds member `m` in `slot` and takes its interface in hand if it
    /// exists (a reload's new member).
    async fn add_member(&mut self, nl: &Netlink, m: &MemberConfig, slot: u8) -> Result<()> {
        self.register_member(m, slot, Member::default())?;
        self.take_in_hand(nl, self.members.len() - 1).await
    }

    /// Adds member `m` in `slot` to the policy and the prober, starting from
    /// the record `kept` in the pins (its decisions and counters; a default
    /// one for a member new to the slot, whose counters are then cleared).
    fn register_member(&mut self, m: &MemberConfig, slot: u8, kept: Member) -> Result<()> {
        let now = self.epoch.elapsed();
        let probing = self.probing.add_member(m, slot, kept.probes, now);
        self.policy.add_member(MemberSpec {
            name: m.interface.clone(),
            standby: m.standby,
            probing,
        })?;
        self.members.push(MemberRuntime {
            name: m.interface.clone(),
            slot,
            test_address: m.test_address.map(IpNet::V4),
            link: None,
            reported: false,
            failures: kept.failures,
            repairs: kept.repairs,
            table: member_table(&m.interface),
            record: 0,
            saved_sysctls: record::saved_sysctls(&kept),
            xdp: None,
        });
        let i = self.members.len() - 1;
        if kept.name[0] == 0 {
            // Another member's traffic counts, device and kernel verdict
            // are not this one's.
            self.dataplane.clear_member_counters(slot)?;
            self.dataplane.forget_member_device(slot)?;
            self.dataplane.put_back(slot)?;
            return Ok(());
        }
        let decisions = record::kept(kept.record);
        self.policy.restore(&m.interface, decisions)?;
        if decisions.offline {
            self.probing.set_offline(i, true, now);
        } else if decisions.probe_failed {
            self.probing.restore_failed(i, now);
        }
        Ok(())
    }

    /// Takes member `i`'s interface in hand if it exists, or reports it
    /// missing.
    async fn take_in_hand(&mut self, nl: &Netlink, i: usize) -> Result<()> {
        let name = self.members[i].name.clone();
        match nl.link(&name).await? {
            Some(link) => self.member_link(nl, i, link).await,
            None => {
                warn!(
                    "Interface {name} of group {} does not exist; it will be adopted when it appears",
                    self.name
                );
                self.members[i].reported = true;
                self.probing.gone(i, self.epoch.elapsed());
                self.event(Event::Removed(name))?;
                self.publish_member(i)
            }
        }
    }

    /// Takes member `i` out of the group: what ipmpd set up on its interface
    /// goes, its slot is freed, its traffic moves to the others.
    async fn remove_member(&mut self, nl: &Netlink, i: usize) -> Result<()> {
        let record = self.member_record(i);
        let m = self.members.remove(i);
        // A new member may get the slot: it must announce its bindings.
        for bound in &mut self.bindings {
            if *bound == Some(m.slot) {
                *bound = None;
            }
        }
        self.probing.remove_member(i);
        self.notices.extend(self.policy.remove_member(&m.name)?);
        self.dataplane.detach_member(&m.name)?;
        self.dataplane.set_member(m.slot, &Member::default())?;
        self.dataplane.forget_member_device(m.slot)?;
        self.dataplane.put_back(m.slot)?;
        teardown::member(nl, &record).await?;
        info!("Interface {} removed from group {}", m.name, self.name);
        Ok(())
    }

    /// Applies a changed configuration of this group as a difference:
    /// members, data addresses, targets, FDT and failback; what did not
    /// change keeps its slot, flows and probe state. Members come and go
    /// first, and `self.config` follows each step, so that after a failure
    /// reconfiguring to the previous configuration undoes what was done.
    pub async fn reconfigure(
        &mut self,
        nl: &Netlink,
        new: &GroupConfig,
        daemon: &DaemonConfig,
    ) -> Result<()> {
        // Members that left, or changed (they come back below).
        while let Some(i) = self
            .config
            .members
            .iter()
            .position(|m| !new.members.contains(m))
        {
            let old = self.config.members.remove(i);
            if let Some(j) = self.member_index(&old.interface) {
                self.remove_member(nl, j).await?;
            }
        }
        self.peer_notifications = daemon.peer_notifications;
        self.probing.configure(new, daemon);
        self.policy.set_failback(daemon.failback);
        let added: Vec<MemberConfig> = new
            .members
            .iter()
            .filter(|m| !self.config.members.contains(m))
            .cloned()
            .collect();
        for m in &added {
            let taken: Vec<u8> = self.members.iter().map(|m| m.slot).collect();
            let slot = (0..MAX_MEMBERS as u8)
                .find(|s| !taken.contains(s))
                .context("no free member slot")?;
            if let Err(e) = self.add_member(nl, m, slot).await {
                // Take the half-added member out again: the group stays as
                // its configuration says.
                if let Some(j) = self.member_index(&m.interface) {
                    if let Err(undo) = self.remove_member(nl, j).await {
                        warn!("Removing {} again: {undo:#}", m.interface);
                    }
                }
                return Err(e.context(format!("adding {} to group {}", m.interface, self.name)));
            }
            self.config.members.push(m.clone());
        }
        for addr in self
            .config
            .data_addresses
            .iter()
            .filter(|a| !new.data_addresses.contains(a))
        {
            nl.delete_address(self.index, *addr).await?;
            self.dataplane
                .unbind_data_address(&data_address_key(addr.addr()))?;
        }
        let bound: HashMap<IpNet, Option<u8>> = self
            .config
            .data_addresses
            .iter()
            .copied()
            .zip(self.bindings.iter().copied())
            .collect();
        self.bindings = new
            .data_addresses
            .iter()
            .map(|a| bound.get(a).copied().flatten())
            .collect();
        // A removed address is no longer announced.
        self.notifications
            .retain(|n| new.data_addresses.iter().any(|a| a.addr() == n.address));
        for addr in new
            .data_addresses
            .iter()
            .filter(|a| !self.config.data_addresses.contains(a))
        {
            nl.add_address(self.index, *addr, false).await?;
        }
        self.configured = dataplane_settings(new, self.configured.probe_key);
        self.config = new.clone();
        self.apply(nl, Instant::now()).await?;
        self.mirror_routes(nl).await
    }

    pub fn status(&self) -> GroupStatus {
        let mut status = self.policy.status();
        self.probing.fill(&mut status);
        let macs: Vec<Option<[u8; 6]>> = self
            .members
            .iter()
            .map(|m| m.link.as_ref().map(|l| l.mac))
            .collect();
        for ((s, m), mac) in status.members.iter_mut().zip(&self.members).zip(&macs) {
            s.xdp = m.link.as_ref().and(m.xdp.clone());
            // ipmpstat's `h`: another member has the same hardware address.
            s.flags.dup_hwaddr =
                mac.is_some() && macs.iter().filter(|other| *other == mac).count() > 1;
        }
        let up = status.members.iter().any(|m| m.active);
        status.addresses = self
            .config
            .data_addresses
            .iter()
            .zip(&self.bindings)
            .map(|(a, bound)| AddressStatus {
                address: a.addr(),
                up,
                inbound: bound.and_then(|slot| {
                    let m = self.members.iter().find(|m| m.slot == slot)?;
                    Some(m.name.clone())
                }),
            })
            .collect();
        status
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `interface` is a member of this group.
    pub fn has_member(&self, interface: &str) -> bool {
        self.member_index(interface).is_some()
    }

    /// Takes member `interface` offline or brings it online; `Ok(Some(reason))`
    /// when the policy refuses (the last usable member cannot go offline).
    pub async fn set_offline(
        &mut self,
        nl: &Netlink,
        interface: &str,
        offline: bool,
    ) -> Result<Option<String>> {
        let Some(i) = self.member_index(interface) else {
            return Ok(Some(format!(
                "{interface} is not a member of group {}",
                self.name
            )));
        };
        let name = interface.to_string();
        let event = if offline {
            Event::Offline(name)
        } else {
            Event::Online(name)
        };
        if let Err(e) = self.event(event) {
            return match e.downcast_ref::<PolicyError>() {
                Some(refusal @ PolicyError::OfflineRefused { .. }) => Ok(Some(refusal.to_string())),
                _ => Err(e),
            };
        }
        self.probing.set_offline(i, offline, self.epoch.elapsed());
        self.apply(nl, Instant::now()).await?;
        Ok(None)
    }

    /// Whether any member of the group probes.
    pub fn probes(&self) -> bool {
        self.probing.any()
    }

    /// Resolves when the kernel may have probe replies for this group.
    pub async fn replies_ready(&self) -> Result<()> {
        self.replies.ready().await
    }

    /// Feeds the probe replies the kernel has timed to the prober.
    pub async fn on_probe_replies(&mut self, nl: &Netlink) -> Result<()> {
        self.take_replies()?;
        self.apply(nl, Instant::now()).await
    }

    fn take_replies(&mut self) -> Result<()> {
        for reply in self.replies.drain() {
            let events = self.probing.reply(&reply);
            self.prober_events(events)?;
        }
        Ok(())
    }

    /// What the metrics server needs of this group.
    pub fn metrics_source(&self) -> GroupSource {
        let buckets = bucket_counts(&self.table);
        GroupSource {
            status: self.status(),
            pin_dir: self.pin_dir.clone(),
            members: self
                .members
                .iter()
                .enumerate()
                .map(|(i, m)| MemberSource {
                    slot: m.slot,
                    failures: m.failures,
                    repairs: m.repairs,
                    probes: self.probing.counts(i),
                    buckets: buckets[m.slot as usize],
                })
                .collect(),
        }
    }

    /// A failed tick is tried again this much later, not at once.
    pub fn retry_later(&mut self) {
        self.retry_at = Some(Instant::now() + TICK_RETRY);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let deadline = self.timers_deadline()?;
        Some(match self.retry_at {
            Some(retry) if retry > Instant::now() => deadline.max(retry),
            _ => deadline,
        })
    }

    fn timers_deadline(&self) -> Option<Instant> {
        let policy = self.policy.next_deadline();
        let probes = self.probing.next_deadline();
        let notifications = self.notifications.iter().map(|n| n.due).min();
        policy
            .into_iter()
            .chain(probes)
            .chain(notifications)
            .chain([self.memberships_due])
            .min()
            .map(|d| self.epoch + d)
    }

    /// Serves the timers that are due: anti-flap holds and probes.
    pub async fn tick(&mut self, nl: &Netlink) -> Result<()> {
        // Replies the kernel already has count before any loss is judged.
        self.take_replies()?;
        let now = self.epoch.elapsed();
        if self.policy.next_deadline().is_some_and(|d| d <= now) {
            self.event(Event::Tick)?;
        }
        self.notify_peers(now);
        if self.memberships_due <= now {
            if self.interface_lost {
                // Probing goes on meanwhile.
                if let Err(e) = self.recreate_interface(nl).await {
                    warn!(
                        "Group interface {}: {e:#}; trying again in a second",
                        self.name
                    );
                }
            }
            // Also after a restart, or a member's new interface index.
            self.hold_cast_groups();
            self.hold_solicited_groups();
            self.restore_pins();
            self.memberships_due = now + MEMBERSHIP_REFRESH;
            // The kernel announces no new router flag: read them each second.
            if (0..self.members.len()).any(|i| self.probing.probes_v6(i)) {
                let heard = nl.heard_routers().await?;
                for i in 0..self.members.len() {
                    let index = self.members[i].link.as_ref().map(|l| l.index);
                    if let (true, Some(index)) = (self.probing.probes_v6(i), index) {
                        let mine = heard.iter().filter(|(at, _)| *at == index);
                        self.probing
                            .set_heard_routers(i, mine.map(|&(_, r)| r).collect());
                    }
                }
            }
        }
        for i in 0..self.members.len() {
            if let (true, Some(index)) = (
                self.probing.awaits_link_local(i),
                self.members[i].link.as_ref().map(|l| l.index),
            ) {
                if let Some(ll) = nl.link_local(index).await? {
                    self.probing.present(i, index, Some(ll), now);
                    self.publish_member(i)?;
                }
            }
        }
        let before: Vec<ProbeCounts> = (0..self.members.len())
            .map(|i| self.probing.counts(i))
            .collect();
        let events = self.probing.poll(now);
        self.prober_events(events)?;
        for (i, counts) in before.into_iter().enumerate() {
            if self.probing.counts(i) != counts {
                self.publish_member(i)?;
            }
        }
        self.apply(nl, Instant::now()).await
    }

    /// The prober's failures and repairs go to the policy.
    fn prober_events(&mut self, events: Vec<ProberEvent>) -> Result<()> {
        for e in events {
            match e {
                ProberEvent::Failure(m) => self.event(Event::ProbeFailure(m))?,
                ProberEvent::Repair(m) => self.event(Event::ProbeRepair(m))?,
                ProberEvent::FdtRaised { ref member, .. } => {
                    self.announce(Level::ERROR, "fdt_raised", Some(member), &e.to_string())
                }
                ProberEvent::FdtImproved { ref member, .. } => {
                    self.announce(Level::INFO, "fdt_improved", Some(member), &e.to_string())
                }
            }
        }
        Ok(())
    }

    /// Handles a kernel change read at `received`.
    pub async fn on_change(
        &mut self,
        nl: &Netlink,
        change: &Change,
        received: Instant,
    ) -> Result<()> {
        match change {
            Change::Link(link) => {
                if let Some(i) = self.member_index(&link.name) {
                    self.member_link(nl, i, link.clone()).await?;
                    self.apply(nl, received).await?;
                }
            }
            Change::LinkGone(link) if link.index == self.index => {
                self.recreate_interface(nl).await?
            }
            Change::LinkGone(link) => {
                if let Some(i) = self.member_index(&link.name) {
                    if self.members[i].link.take().is_some() {
                        self.probing.gone(i, self.epoch.elapsed());
                        self.event(Event::Removed(link.name.clone()))?;
                        self.publish_member(i)?;
                        self.apply(nl, received).await?;
                        // Its memory may be reused: the kernel must not read
                        // it (the flow table no longer names it).
                        self.dataplane.forget_member_device(self.members[i].slot)?;
                    }
                }
            }
            // Routes flushed with a deleted group interface (its link is
            // gone) are not mirrored: they come back with it.
            Change::Route { oif } if *oif == self.index => {
                if heal::exists(nl, &self.name, self.index).await? {
                    self.mirror_routes(nl).await?
                }
            }
            other => self.heal(nl, other).await?,
        }
        Ok(())
    }

    /// The fast path: interface `index` was reported down (by the message
    /// read at `received`); if it is an active member, the flow table flips
    /// at once to what the kernel already does. The policy confirms when
    /// the full message reaches it, and then moves nothing.
    pub fn link_alarm(&mut self, index: u32, received: Instant) -> Result<()> {
        let Some(m) = self
            .members
            .iter()
            .find(|m| m.link.as_ref().is_some_and(|l| l.index == index))
        else {
            return Ok(());
        };
        let active = &self.table.active[..self.table.active_count as usize];
        if !active.contains(&m.slot) {
            return Ok(());
        }
        let next = fail_over(&self.table, m.slot);
        self.dataplane.write_flow_table(&next)?;
        self.table = next;
        // Its backups are partial: the policy's table replaces it.
        self.table_settled = false;
        debug!(
            "Link alarm: {} of group {} down, flow table flipped {} us after the message",
            m.name,
            self.name,
            received.elapsed().as_micros()
        );
        Ok(())
    }

    fn member_index(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| m.name == name)
    }

    /// A member's link as the kernel now reports it: prepares a member that
    /// (re)appeared, and feeds what changed to the policy.
    async fn member_link(&mut self, nl: &Netlink, i: usize, link: Link) -> Result<()> {
        let previous = self.members[i].link.replace(link.clone());
        let name = link.name.clone();
        let appeared = previous.as_ref().map(|p| p.index) != Some(link.index);
        if appeared {
            self.prepare_member(nl, i, &link).await?;
            if std::mem::replace(&mut self.members[i].reported, true) {
                self.event(Event::Appeared(name.clone()))?;
            }
        }
        let was = previous.filter(|_| !appeared);
        if was.as_ref().map(|p| p.admin_up) != Some(link.admin_up) {
            self.event(if link.admin_up {
                Event::AdminUp(name.clone())
            } else {
                Event::AdminDown(name.clone())
            })?;
        }
        if was.as_ref().map(|p| p.carrier) != Some(link.carrier) {
            self.event(if link.carrier {
                Event::LinkUp(name.clone())
            } else {
                Event::LinkDown(name.clone())
            })?;
        }
        let up = |l: &Link| l.admin_up && l.carrier;
        if was.as_ref().map(up) != Some(up(&link)) {
            self.probing.link(i, up(&link), self.epoch.elapsed());
        }
        if link.admin_up && was.as_ref().is_some_and(|p| !p.admin_up) {
            // Taking a link down flushed its routes: mirror them again.
            let routes = nl.routes_through(self.index).await?;
            self.mirror_member(nl, i, &routes).await?;
        }
        Ok(())
    }

    async fn prepare_member(&mut self, nl: &Netlink, i: usize, link: &Link) -> Result<()> {
        let originals = sysctl::prepare_member(&self.members[i].name)?;
        // The first ipmpd to prepare it saw the originals; later ones see ours.
        self.members[i].saved_sysctls.get_or_insert(originals);
        let m = &self.members[i];
        if let Some(addr) = m.test_address {
            nl.add_address(link.index, addr, true).await?;
        }
        nl.ensure_member_rule(&m.name, m.table).await?;
        let link_local = nl.link_local(link.index).await?;
        self.probing
            .present(i, link.index, link_local, self.epoch.elapsed());
        let peer_native = self.xdp_mode == XdpMode::Auto
            && link.veth
            && nl.peer_runs_native_xdp(link).await.unwrap_or_else(|e| {
                warn!(
                    "Cannot see the XDP program of {}'s veth peer: {e:#}",
                    m.name
                );
                false
            });
        let (mode, why) = xdp_mode(self.xdp_mode, link.veth, peer_native);
        let reason = match self.dataplane.attach_member(&m.name, m.slot, mode)? {
            Attached::Adopted => {
                info!("Adopted the XDP program on {}", m.name);
                "adopted from the pins".to_string()
            }
            Attached::New => {
                info!("Attached the XDP program to {} in {why}", m.name);
                why.to_string()
            }
        };
        // The kernel says which mode it took ("the driver's" may be either).
        let attached = nl.link(&m.name).await?.and_then(|l| l.xdp);
        self.members[i].xdp = Some(XdpStatus {
            mode: attached.unwrap_or(crate::ipmpstat::UNKNOWN).to_string(),
            reason,
        });
        let m = &self.members[i];
        if !self.dataplane.locate_member(m.slot, link.index)? {
            warn!(
                "The kernel cannot read the link state of {}: when it fails, traffic moves \
                 only once ipmpd has heard of it",
                m.name
            );
        }
        self.publish_member(i)
    }

    /// Tells the dataplane where member `i` is (ifindex 0 while missing),
    /// and keeps its record there.
    fn publish_member(&mut self, i: usize) -> Result<()> {
        let entry = self.member_record(i);
        self.members[i].record = entry.record;
        self.dataplane.set_member(self.members[i].slot, &entry)
    }

    /// Member `i` as its pinned record holds it.
    fn member_record(&self, i: usize) -> Member {
        let bits = self.record_bits(i);
        let m = &self.members[i];
        let (test_v4, test_v6) = self.probing.test_addresses(i);
        let mut entry = Member {
            failures: m.failures,
            repairs: m.repairs,
            probes: self.probing.counts(i),
            test_v4: test_v4.map_or(0, |a| u32::from_ne_bytes(a.octets())),
            test_v6: test_v6.map_or([0; 16], |a| a.octets()),
            record: bits,
            saved_sysctls: m.saved_sysctls.unwrap_or_default(),
            test_v4_prefix: m.test_address.map_or(0, |a| a.prefix_len()),
            ..Member::default()
        };
        let n = m.name.len().min(entry.name.len() - 1);
        entry.name[..n].copy_from_slice(&m.name.as_bytes()[..n]);
        if let Some(link) = &m.link {
            entry.ifindex = link.index;
            entry.mac = link.mac;
        }
        entry
    }

    /// Member `i`'s decisions as its record holds them.
    fn record_bits(&self, i: usize) -> u32 {
        let saved = self.members[i].saved_sysctls.is_some();
        record::bits(&self.policy.kept(i), saved)
    }

    /// Keeps every member's record in step with the policy's decisions.
    fn write_records(&mut self) -> Result<()> {
        for i in 0..self.members.len() {
            if self.record_bits(i) != self.members[i].record {
                self.publish_member(i)?;
            }
        }
        Ok(())
    }

    /// Members a previous configuration had and this one does not: what
    /// ipmpd set up for them goes, and their slots are freed.
    async fn remove_unconfigured_members(&mut self, nl: &Netlink) -> Result<()> {
        for (slot, m) in self.dataplane.members()? {
            let name = record::name(&m);
            if !self.config.members.iter().any(|c| c.interface == name) {
                info!(
                    "Interface {name} is no longer in group {}: removing its XDP program, \
                     test address, rules and table",
                    self.name
                );
                self.dataplane.detach_member(&name)?;
                teardown::member(nl, &m).await?;
                teardown::detached(nl, &name).await?;
                self.dataplane.set_member(slot, &Member::default())?;
            }
        }
        Ok(())
    }

    /// Logs a state change in in.mpathd's words, at in.mpathd's severity
    /// (its LOG_ERR is error, LOG_NOTICE info), and tells event followers.
    fn announce(&self, level: Level, event: &str, interface: Option<&str>, message: &str) {
        match level {
            Level::ERROR => error!("{message}"),
            Level::WARN => warn!("{message}"),
            _ => info!("{message}"),
        }
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let _ = self.events.send(EventRecord {
            time: time.as_secs_f64(),
            group: self.name.clone(),
            interface: interface.map(str::to_string),
            event: event.to_string(),
            message: message.to_string(),
        });
    }

    /// Feeds the policy; its notices are logged by [`Self::apply`], after
    /// the flow table moved traffic (logging first would delay failover).
    fn event(&mut self, event: Event) -> Result<()> {
        let before = self.policy.status();
        let notices = self.policy.handle(event, self.epoch.elapsed())?;
        self.notices.extend(notices);
        let after = self.policy.status();
        for (i, (b, a)) in before.members.iter().zip(&after.members).enumerate() {
            let counted = match (b.state, a.state) {
                (MemberState::Ok, MemberState::Failed) => &mut self.members[i].failures,
                (MemberState::Failed, MemberState::Ok) => &mut self.members[i].repairs,
                _ => continue,
            };
            *counted += 1;
            self.publish_member(i)?;
        }
        Ok(())
    }

    /// Brings the dataplane and the group interface in line with the policy,
    /// after an event read at `since`. The flow table goes first: it is what
    /// moves traffic off a dead member.
    async fn apply(&mut self, nl: &Netlink, since: Instant) -> Result<()> {
        let mut active: Vec<u8> = self
            .policy
            .active_members()
            .iter()
            .map(|&i| self.members[i].slot)
            .collect();
        active.sort_unstable();
        self.put_back_in_service(&active, since)?;
        // The table is a function of the previous one and the active set:
        // unchanged set, unchanged table (the backups cost a table per
        // member to compute, too much for every tick of a large group).
        let unchanged = self.table_settled
            && active[..] == self.table.active[..self.table.active_count as usize];
        let next = if unchanged {
            self.table
        } else {
            next_table(&self.table, &active)
        };
        self.table_settled = true;
        if next != self.table {
            self.dataplane.write_flow_table(&next)?;
            let moved = next
                .slots
                .iter()
                .zip(self.table.slots.iter())
                .filter(|(a, b)| a != b)
                .count();
            self.table = next;
            debug!(
                "Flow table of group {} rewritten, {moved} buckets moved, {} us after the event",
                self.name,
                since.elapsed().as_micros()
            );
        }
        self.bind_inbound(&active)?;
        for notice in std::mem::take(&mut self.notices) {
            self.announce(
                notice.level(),
                notice.kind(),
                notice.member(),
                &notice.to_string(),
            );
        }
        let cast = self
            .policy
            .cast_member()
            .map_or(NO_MEMBER, |i| self.members[i].slot) as u32;
        let settings = ipmp_common::GroupConfig {
            cast_slot_v4: cast,
            cast_slot_v6: cast,
            ..self.configured
        };
        if self.settings != Some(settings) {
            self.dataplane.set_group(&settings)?;
            self.settings = Some(settings);
            self.hold_cast_groups();
        }
        let carrier = !active.is_empty();
        if self.carrier != Some(carrier) {
            nl.set_up(&self.peer, carrier).await?;
            self.carrier = Some(carrier);
        }
        // Solaris: the IPMP interface's MTU is the smallest of its members'.
        let mtu = self
            .members
            .iter()
            .filter_map(|m| m.link.as_ref().map(|l| l.mtu))
            .min();
        if let Some(mtu) = mtu.filter(|&m| m != self.mtu) {
            nl.set_mtu(&self.name, mtu).await?;
            self.mtu = mtu;
        }
        self.write_records()
    }

    /// The kernel takes a member whose link it finds down out of the egress
    /// path by itself, and keeps it out; putting it back is the policy's
    /// call, made here for every member the policy counts as active.
    ///
    /// Members that were active already are looked at only every
    /// [`TAKEN_OUT_SWEEP`] (the kernel marks a member again at once if its
    /// link is still down): the netlink messages that bring a member back
    /// make it newly active, so a sweep only catches what netlink lost.
    fn put_back_in_service(&mut self, active: &[u8], now: Instant) -> Result<()> {
        let sweep = self
            .taken_out_swept
            .is_none_or(|at| now >= at + TAKEN_OUT_SWEEP);
        if sweep {
            self.taken_out_swept = Some(now);
        }
        let was_active = &self.table.active[..self.table.active_count as usize];
        for &slot in active {
            if !sweep && was_active.contains(&slot) {
                continue;
            }
            let why = self.dataplane.taken_out(slot)?;
            if why != 0 {
                self.dataplane.put_back(slot)?;
                let name = self.members.iter().find(|m| m.slot == slot);
                debug!(
                    "{} back in service in group {} (the kernel had taken it out: {})",
                    name.map_or("?", |m| m.name.as_str()),
                    self.name,
                    taken_out_reason(why)
                );
            }
        }
        Ok(())
    }

    /// Binds the data addresses to the `active` members (slots) for inbound
    /// traffic; every new binding is written to the dataplane, logged, and
    /// announced to the peers through its member.
    fn bind_inbound(&mut self, active: &[u8]) -> Result<()> {
        let next = inbound::bind(&self.bindings, active);
        let now = self.epoch.elapsed();
        for (i, &bound) in next.iter().enumerate() {
            if bound == self.bindings[i] {
                continue;
            }
            let address = self.config.data_addresses[i].addr();
            self.dataplane
                .bind_data_address(data_address_key(address), bound.unwrap_or(NO_MEMBER))?;
            self.notifications.retain(|n| n.address != address);
            let Some(slot) = bound else { continue };
            let member = self.members.iter().find(|m| m.slot == slot);
            let name = member.map_or("?", |m| m.name.as_str()).to_string();
            self.announce(
                Level::INFO,
                "address_bound",
                Some(&name),
                &format!(
                    "Data address {address} of group {} now bound to {name}",
                    self.name
                ),
            );
            if self.peer_notifications > 0 {
                self.notifications.push(PendingNotification {
                    address,
                    slot,
                    left: self.peer_notifications,
                    due: now,
                });
            }
        }
        if next != self.bindings {
            self.bindings = next;
            self.hold_solicited_groups();
        }
        self.notify_peers(now);
        Ok(())
    }

    /// Holds the group interface's multicast groups on the cast member:
    /// when it changes, joining them there sends IGMP / MLD reports through
    /// it, so switches move the groups' traffic to it.
    fn hold_cast_groups(&mut self) {
        let Some(settings) = self.settings else {
            return;
        };
        let ifindex = |slot: u32| {
            let m = self.members.iter().find(|m| u32::from(m.slot) == slot)?;
            Some(m.link.as_ref()?.index)
        };
        let (v4, v6) = (
            ifindex(settings.cast_slot_v4),
            ifindex(settings.cast_slot_v6),
        );
        let held = memberships::read(&self.name)
            .and_then(|wanted| self.cast_groups.follow(v4, v6, &wanted));
        match held {
            Ok(changes) if changes.joined > 0 || changes.left > 0 => debug!(
                "Multicast groups of {} on the cast member: {} joined, {} left",
                self.name, changes.joined, changes.left
            ),
            Ok(_) => {}
            Err(e) => warn!("Multicast groups of {}: {e:#}", self.name),
        }
    }

    /// Holds each IPv6 data address's solicited-node group on its bound
    /// member, so that switches snooping MLD forward solicitations there.
    fn hold_solicited_groups(&mut self) {
        for m in &self.members {
            let Some(link) = &m.link else {
                self.solicited.remove(&m.slot);
                continue;
            };
            let wanted = Memberships {
                v4: Vec::new(),
                v6: self
                    .config
                    .data_addresses
                    .iter()
                    .zip(&self.bindings)
                    .filter(|(_, bound)| **bound == Some(m.slot))
                    .filter_map(|(a, _)| match a.addr() {
                        IpAddr::V6(v6) => Some(solicited_node(v6)),
                        IpAddr::V4(_) => None,
                    })
                    .collect(),
            };
            let held = self.solicited.entry(m.slot).or_default();
            if let Err(e) = held.follow(None, Some(link.index), &wanted) {
                warn!("Solicited-node groups on {}: {e:#}", m.name);
            }
        }
    }

    /// Sends the peer notifications that are due at `now`.
    fn notify_peers(&mut self, now: Duration) {
        for n in self.notifications.iter_mut().filter(|n| n.due <= now) {
            n.left -= 1;
            n.due = now + PEER_NOTIFICATION_INTERVAL;
            let link = self
                .members
                .iter()
                .find(|m| m.slot == n.slot)
                .and_then(|m| m.link.as_ref());
            let Some(link) = link else { continue };
            if let Err(e) = self.notifier.announce(n.address, link.index, link.mac) {
                warn!(
                    "Cannot notify peers that {} is now on {}: {e}",
                    n.address, link.name
                );
            }
        }
        self.notifications.retain(|n| n.left > 0);
    }

    /// Mirrors the group interface's routes into every member's table; their
    /// gateways are the members' routers to probe.
    async fn mirror_routes(&mut self, nl: &Netlink) -> Result<()> {
        let routes = nl.routes_through(self.index).await?;
        for i in 0..self.members.len() {
            self.mirror_member(nl, i, &routes).await?;
        }
        self.probing
            .set_gateways(&crate::netlink::gateways(&routes));
        self.routes = routes;
        Ok(())
    }

    async fn mirror_member(&self, nl: &Netlink, i: usize, routes: &[RouteMessage]) -> Result<()> {
        let m = &self.members[i];
        let Some(link) = &m.link else { return Ok(()) };
        nl.mirror_routes(routes, link.index, m.table).await
    }

    /// Removes what ipmpd created for this group.
    /// Removes what ipmpd created for this group (a reload dropped it).
    pub async fn teardown(self, nl: &Netlink) -> Result<()> {
        let dir = self.pin_dir.clone();
        // Its programs and links must be let go before their pins, or they
        // would stay attached.
        drop(self);
        teardown::group(nl, &dir).await.map(drop)
    }
}

/// Keeps the slots a previous ipmpd gave to members still configured (so
/// the adopted flow table stays valid); new members get the free slots.
fn assign_slots(pinned: &[(u8, Member)], config: &GroupConfig) -> HashMap<String, u8> {
    let mut slots = HashMap::new();
    for (slot, m) in pinned {
        let name = record::name(m);
        if config.members.iter().any(|c| c.interface == name) {
            slots.insert(name, *slot);
        }
    }
    let taken: Vec<u8> = slots.values().copied().collect();
    let mut free = (0..MAX_MEMBERS as u8).filter(|s| !taken.contains(s));
    for c in &config.members {
        if !slots.contains_key(&c.interface) {
            slots.insert(
                c.interface.clone(),
                free.next()
                    .expect("config allows at most MAX_MEMBERS members"),
            );
        }
    }
    slots
}

/// The inbound bindings a previous ipmpd left in the pins, for the data
/// addresses still configured and bound to a member still configured (so
/// a restart moves nothing); pinned addresses no longer configured go.
fn adopt_bindings(
    dataplane: &mut GroupDataplane,
    config: &GroupConfig,
    slots: &HashMap<String, u8>,
) -> Result<Vec<Option<u8>>> {
    let pinned = dataplane.data_addresses()?;
    for (key, _) in &pinned {
        if !config
            .data_addresses
            .iter()
            .any(|a| data_address_key(a.addr()) == *key)
        {
            dataplane.unbind_data_address(key)?;
        }
    }
    Ok(config
        .data_addresses
        .iter()
        .map(|a| {
            let key = data_address_key(a.addr());
            let (_, slot) = pinned.iter().find(|(k, _)| *k == key)?;
            slots.values().find(|&&s| u32::from(s) == *slot).copied()
        })
        .collect())
}

/// The group's dataplane settings from its configuration: the IPv4 data
/// subnets' broadcast addresses (network order, as many as the dataplane
/// holds), echo answering, and the secret probe key.
fn dataplane_settings(config: &GroupConfig, probe_key: [u64; 2]) -> ipmp_common::GroupConfig {
    let v4: Vec<ipnet::Ipv4Net> = config
        .data_addresses
        .iter()
        .filter_map(|a| match a {
            IpNet::V4(v4) => Some(*v4),
            IpNet::V6(_) => None,
        })
        .collect();
    let mut broadcasts: Vec<u32> = v4
        .iter()
        .filter(|a| a.prefix_len() < 31)
        .map(|a| u32::from_ne_bytes(a.broadcast().octets()))
        .collect();
    broadcasts.sort_unstable();
    broadcasts.dedup();
    if broadcasts.len() > MAX_BROADCASTS {
        warn!(
            "Group {} has data addresses in more than {MAX_BROADCASTS} IPv4 subnets: broadcasts to \
             the further subnets leave as unicast",
            config.name
        );
    }
    let mut settings = ipmp_common::GroupConfig {
        probe_key,
        answer_echo: config.answer_echo.into(),
        ..Default::default()
    };
    for (slot, b) in settings.broadcast_v4.iter_mut().zip(broadcasts) {
        *slot = b;
    }
    settings
}

/// The solicited-node multicast group of `address` (RFC 4291 2.7.1), to
/// which neighbour solicitations for it are sent.
fn solicited_node(address: Ipv6Addr) -> Ipv6Addr {
    let o = address.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The kernel's reasons for taking a member out, in words.
fn taken_out_reason(why: u32) -> &'static str {
    use ipmp_common::{TAKEN_OUT_ADMIN_DOWN, TAKEN_OUT_GONE, TAKEN_OUT_NO_CARRIER};
    match why {
        TAKEN_OUT_NO_CARRIER => "no carrier",
        TAKEN_OUT_ADMIN_DOWN => "administratively down",
        TAKEN_OUT_GONE => "device gone",
        _ => "link down",
    }
}

/// The XDP attach mode for a member (`veth`, and whether its veth peer
/// runs a native XDP program), and why.
fn xdp_mode(setting: XdpMode, veth: bool, peer_native: bool) -> (KernelXdpMode, &'static str) {
    match setting {
        XdpMode::Native => (KernelXdpMode::Driver, "native mode (configured)"),
        XdpMode::Generic => (KernelXdpMode::Skb, "generic mode (configured)"),
        // The kernel drops XDP_TX frames sent into a veth peer that runs no
        // native XDP program; generic mode delivers them.
        XdpMode::Auto if veth && peer_native => (
            KernelXdpMode::Driver,
            "native mode (auto: the veth peer runs a native XDP program)",
        ),
        XdpMode::Auto if veth => (
            KernelXdpMode::Skb,
            "generic mode (auto: veth member whose peer runs no native XDP program)",
        ),
        XdpMode::Auto => (KernelXdpMode::Default, "the driver's mode (auto)"),
    }
}

#[cfg(test)]
mod tests {
    use super::solicited_node;

    #[test]
    fn solicited_node_group_keeps_the_low_24_bits() {
        let a = "2001:db8::1:2345:6789".parse().unwrap();
        assert_eq!(
            solicited_node(a),
            "ff02::1:ff45:6789".parse::<std::net::Ipv6Addr>().unwrap()
        );
    }
}
