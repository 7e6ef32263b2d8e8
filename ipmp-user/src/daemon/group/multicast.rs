//! Multicast group memberships held on the members, and the refresh timer
//! that reads them again: the group interface's groups are held on the
//! cast member (so inbound multicast is received there, and switches
//! snooping IGMP / MLD send it there), and each IPv6 data address's
//! solicited-node group on its bound member.
use std::{net::IpAddr, time::Duration};

use anyhow::Result;
use tracing::{debug, warn};

use super::{settings::solicited_node, Group};
use crate::{
    memberships::{self, Memberships},
    netlink::Netlink,
};

/// How often the group interface's multicast groups are read again, to be
/// held on the cast member (the kernel announces no change of them), the
/// members' groups checked, and the pins (bpffs announces nothing either).
pub(super) const MEMBERSHIP_REFRESH: Duration = Duration::from_secs(1);

impl Group {
    /// The refresh timer, due at `now`: the group interface if it was lost,
    /// the multicast groups, the pins and the routers heard.
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
        // Also after a restart, or a member's new interface index.
        self.hold_cast_groups();
        self.hold_solicited_groups();
        self.restore_pins();
        self.memberships_due = now + MEMBERSHIP_REFRESH;
        self.read_heard_routers(nl).await
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
