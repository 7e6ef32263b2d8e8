//! One IPMP group at run time: wires kernel events into the group's policy
//! and the policy's decisions into the dataplane and the group interface.
//!
//! The wiring is split by concern: [`lifecycle`] takes members in hand and
//! lets them go, [`reconfigure`] applies a reload, [`events`] feeds the
//! policy and serves the timers, [`apply`] carries the policy's decisions
//! out, [`inbound`] binds the data addresses and notifies peers,
//! [`multicast`] holds the multicast groups, [`routes`] mirrors routes and
//! [`heal`] puts back what others removed. The decisions without I/O are in
//! [`slots`], [`notifications`] and [`settings`]; [`members`] holds the
//! members, found by slot.
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Result;
use ipmp_common::{FlowTable, Member};
use tokio::sync::broadcast;
use tracing::{info, warn};

use crate::{
    config::{DaemonConfig, GroupConfig, XdpMode},
    control::Feeds,
    dataplane::{Attached, GroupDataplane},
    memberships::HeldMemberships,
    metrics::{GroupSource, MemberSource},
    model::{AddressStatus, EventRecord, GroupStatus},
    notify::PeerNotifier,
    pin_watch::PinWatch,
    policy::{
        flow_table::bucket_counts,
        group::{GroupPolicy, Notice, PolicyError},
    },
    probe::{replies::Replies, socket::monotonic_ns},
};
use rtnetlink::packet_route::route::RouteMessage;

use self::members::Members;
use super::{
    lock::{self, GroupLock},
    probing::Probing,
    teardown,
};
use crate::netlink::Netlink;

mod apply;
mod events;
mod heal;
mod inbound;
mod lifecycle;
mod members;
mod multicast;
mod notifications;
mod reconfigure;
mod routes;
mod settings;
mod slots;

/// After a failed tick (logged), the group's timers wait this long.
const TICK_RETRY: Duration = Duration::from_secs(1);

/// Why feeding the group an event failed: the policy refused it (nothing
/// changed; callers tell refusals apart), or carrying it out failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

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
    /// Removals from the pin folder, and when the pins are put back.
    pin_watch: PinWatch,
    pins_due: Option<Instant>,
    /// State changes for `ipmpctl events` followers.
    events: broadcast::Sender<EventRecord>,
    dataplane: GroupDataplane,
    members: Members,
    xdp_mode: XdpMode,
    /// The flow table as last written.
    table: FlowTable,
    /// Inbound binding: the slot of the member each of the configured data
    /// addresses is bound to, as last written.
    bindings: Vec<Option<u8>>,
    notifier: PeerNotifier,
    peer_notifications: u32,
    notifications: notifications::Schedule,
    /// The group interface's multicast groups, held on the cast member so
    /// that inbound multicast is received there.
    cast_groups: HeldMemberships,
    /// The solicited-node groups of the IPv6 data addresses, held on their
    /// bound members, by slot.
    solicited: HashMap<u8, HeldMemberships>,
    /// When the refresh timer is due next, since the epoch.
    refresh_due: Duration,
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

/// What a group starts from: its interface and its dataplane, adopted from
/// the pins or new.
struct Opened {
    lock: GroupLock,
    index: u32,
    /// The group interface was created by this start.
    created: bool,
    pin_dir: PathBuf,
    dataplane: GroupDataplane,
    table: FlowTable,
    replies: Replies,
    pin_watch: PinWatch,
}

/// Takes the group's lock, then its interface (created if missing) and its
/// pinned dataplane with the egress program attached.
async fn open(nl: &Netlink, config: &GroupConfig, pin_root: &Path) -> Result<Opened> {
    let name = &config.name;
    // Before the group's interface or pins are touched.
    let lock = lock::take_group(name)?;
    let (link, created) = heal::group_interface(nl, config).await?;
    let pin_dir = pin_root.join(name);
    let mut dataplane = GroupDataplane::load(&pin_dir)?;
    match dataplane.attach_egress(name)? {
        Attached::Adopted => info!("Adopted the pinned dataplane of group {name}"),
        Attached::New => info!("Attached the egress program to {name}"),
    }
    let table = dataplane.flow_table()?;
    let replies = Replies::new(dataplane.take_probe_replies()?)?;
    let pin_watch = PinWatch::new(&pin_dir)?;
    Ok(Opened {
        lock,
        index: link.index,
        created,
        pin_dir,
        dataplane,
        table,
        replies,
        pin_watch,
    })
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
        let mut opened = open(nl, config, pin_root).await?;
        let created = opened.created;
        // Time zero of the policy and the prober, on both clocks.
        let epoch = (Instant::now(), monotonic_ns());
        let pinned = opened.dataplane.members()?;
        let slots = slots::assign_slots(&pinned, config);
        let pinned_bindings = opened.dataplane.data_addresses()?;
        let (bindings, unconfigured) = slots::adopt_bindings(&pinned_bindings, config, &slots);
        for key in &unconfigured {
            opened.dataplane.unbind_data_address(key)?;
        }
        let mut group = Group {
            name: config.name.clone(),
            config: config.clone(),
            pin_dir: opened.pin_dir,
            peer: config.peer_interface(),
            index: opened.index,
            policy: GroupPolicy::new(&config.name, Vec::new(), daemon.failback),
            probing: Probing::new(config, daemon, probe_key, feeds.probes, epoch.1),
            replies: opened.replies,
            pin_watch: opened.pin_watch,
            pins_due: None,
            events: feeds.events,
            dataplane: opened.dataplane,
            members: Members::default(),
            xdp_mode: daemon.xdp_mode,
            table: opened.table,
            bindings,
            notifier: PeerNotifier::new()?,
            peer_notifications: daemon.peer_notifications,
            notifications: notifications::Schedule::default(),
            cast_groups: HeldMemberships::new(),
            solicited: HashMap::new(),
            refresh_due: Duration::ZERO,
            settings: None,
            configured: settings::dataplane_settings(config, probe_key),
            notices: Vec::new(),
            carrier: None,
            taken_out_swept: None,
            table_settled: false,
            mtu: 0,
            epoch: epoch.0,
            retry_at: None,
            routes: Vec::new(),
            _lock: opened.lock,
            interface_lost: false,
        };
        // What was removed before the watch began is not missed.
        group.restore_pins();
        if let Err(e) = group.take_up(nl, &pinned, &slots).await {
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
        // A previous ipmpd's joins went with it.
        group.hold_memberships();
        Ok(group)
    }

    /// Takes the configured members in hand, starting from the records a
    /// previous ipmpd kept in the `pinned` slots, in the `slots` given.
    async fn take_up(
        &mut self,
        nl: &Netlink,
        pinned: &[(u8, Member)],
        slots: &HashMap<String, u8>,
    ) -> Result<()> {
        // Before a new member takes a slot that one of them had.
        self.remove_unconfigured_members(nl).await?;
        // Every member is known before any is reported: a first member
        // found down must not look like the whole group (a false "All IP
        // interfaces ... unusable").
        for m in self.config.members.clone() {
            let slot = slots[&m.interface];
            // The record a previous ipmpd kept in the pins for this member.
            let kept = pinned
                .iter()
                .find(|(s, p)| *s == slot && super::record::name(p) == m.interface)
                .map_or_else(Member::default, |(_, p)| *p);
            self.register_member(&m, slot, kept)?;
        }
        for slot in self.members.slots() {
            self.take_in_hand(nl, slot).await?;
        }
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
        let duplicates = settings::duplicate_hardware(&macs);
        // The policy's members are in configuration order, as ours.
        for ((s, m), dup) in status
            .members
            .iter_mut()
            .zip(self.members.iter())
            .zip(duplicates)
        {
            s.xdp = m.link.as_ref().and(m.xdp.clone());
            // ipmpstat's `h`: another member has the same hardware address.
            s.flags.dup_hwaddr = dup;
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
                inbound: bound.and_then(|slot| Some(self.members.by_slot(slot)?.name.clone())),
            })
            .collect();
        status
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `interface` is a member of this group.
    pub fn has_member(&self, interface: &str) -> bool {
        self.members.by_name(interface).is_some()
    }

    /// Whether any member of the group probes.
    pub fn probes(&self) -> bool {
        self.probing.any()
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
                .map(|m| MemberSource {
                    slot: m.slot,
                    failures: m.failures,
                    repairs: m.repairs,
                    probes: self.probing.counts(m.slot),
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
        let notifications = self.notifications.next_due();
        let refresh = self.refresh_wanted().then_some(self.refresh_due);
        let sweep = self.taken_out_swept.map(|at| at + apply::TAKEN_OUT_SWEEP);
        policy
            .into_iter()
            .chain(probes)
            .chain(notifications)
            .chain(refresh)
            .min()
            .map(|d| self.epoch + d)
            .into_iter()
            .chain(sweep)
            .chain(self.pins_due)
            .min()
    }

    /// Removes what ipmpd created for this group (a reload dropped it, or
    /// it failed to start).
    pub async fn teardown(self, nl: &Netlink) -> Result<()> {
        let dir = self.pin_dir.clone();
        // Its programs and links must be let go before their pins, or they
        // would stay attached.
        drop(self);
        teardown::group(nl, &dir).await.map(drop)
    }
}
