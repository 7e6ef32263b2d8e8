//! Multicast group memberships held on the members, and the refresh timer:
//! the group interface's groups are held on the cast member (so inbound
//! multicast is received there, and switches snooping IGMP / MLD send it
//! there), and each IPv6 data address's solicited-node group on its bound
//! member. They are read again when the kernel announces a join or leave
//! on the group interface (`link_alarm`), not on a timer.
use std::{net::IpAddr, time::Duration};

use anyhow::Result;
use tracing::{debug, warn};

use super::{settings::solicited_node, Group};
use crate::{
    link_alarm,
    memberships::{self, Memberships},
    netlink::Netlink,
};

/// How often the group checks what the kernel announces nothing of, while
/// there is any (see [`Group::refresh_wanted`]): a lost group interface,
/// the routers heard, and, on kernels before 6.13, its interface's
/// multicast groups.
pub(super) const REFRESH: Duration = Duration::from_secs(1);

impl Group {
    /// The refresh timer, due at `now`.
    pub(super) async fn refresh(&mut self, nl: &Netlink, now: Duration) -> Result<()> {
        if self.interface_lost {
            // Probing goes on meanwhile.
            if let Err(e) = self.recreate_interface(nl).await {
                warn!(
                    "Group interface {}: {e:#}; trying again in a second",
                    self.name
                );
            }
        }
        if !link_alarm::memberships_announced() {
            self.hold_memberships();
        }
        self.refresh_due = now + REFRESH;
        self.read_heard_routers(nl).await
    }

    /// Whether the refresh timer has anything to check: otherwise an idle
    /// group does not wake every second for nothing.
    pub(super) fn refresh_wanted(&self) -> bool {
        self.interface_lost
            || !link_alarm::memberships_announced()
            || self
                .members
                .slots()
                .iter()
                .any(|&s| self.probing.probes_v6(s))
    }

    /// A multicast group was joined or left on the interface `index`: if it
    /// is the group interface, the cast member follows. (ipmpd's own joins
    /// on the members are announced too, and ignored.)
    pub fn memberships_changed(&mut self, index: u32) {
        if index == self.index {
            self.hold_cast_groups();
        }
    }

    /// Holds every membership the group's members must have; for when
    /// what they are held on changed (a start, a member's new interface).
    pub(super) fn hold_memberships(&mut self) {
        self.hold_cast_groups();
        self.hold_solicited_groups();
    }

    /// Holds the group interface's multicast groups on the cast member:
    /// when it changes, joining them there sends IGMP / MLD reports through
    /// it, so switches move the groups' traffic to it.
    pub(super) fn hold_cast_groups(&mut self) {
        let Some(settings) = self.settings else {
            return;
        };
        let ifindex = |slot: u32| {
            let m = self.members.iter().find(|m| u32::from(m.slot) == slot)?;
            m.ifindex()
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
    pub(super) fn hold_solicited_groups(&mut self) {
        for m in self.members.iter() {
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
}
