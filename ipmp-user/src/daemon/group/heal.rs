//! Self-healing: what an operator or another program removes from a group
//! is put back, with a log line. The group interface (with its data
//! addresses, egress program and routes) on its netlink removal event; the
//! pins on the pin folder's inotify event (`pin_watch`), by
//! [`Group::restore_pins`] (ipmpd holds every pinned object, so nothing
//! stopped meanwhile).
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tracing::{info, warn};

use super::Group;
use crate::{
    config::GroupConfig,
    netlink::{Change, Link, Netlink},
    sysctl,
};

/// The group interface of `config`, created (a veth pair) when missing,
/// up and carrying the data addresses; and whether it was created here.
pub(super) async fn group_interface(nl: &Netlink, config: &GroupConfig) -> Result<(Link, bool)> {
    let (name, peer) = (&config.name, config.peer_interface());
    let (link, created) = match nl.link(name).await? {
        Some(link) => (link, false),
        None => {
            nl.create_veth(name, &peer).await?;
            info!("Created group interface {name} (veth, peer {peer})");
            let link = nl
                .link(name)
                .await?
                .context("group interface vanished after creation")?;
            (link, true)
        }
    };
    sysctl::quiet_peer(&peer)?;
    nl.set_up(name, true).await?;
    for addr in &config.data_addresses {
        nl.add_address(link.index, *addr, false).await?;
    }
    Ok((link, created))
}

/// Whether interface `name` still exists as `index`.
pub(super) async fn exists(nl: &Netlink, name: &str, index: u32) -> Result<bool> {
    Ok(nl.link(name).await?.is_some_and(|l| l.index == index))
}

/// How long after a removal from the pin folder its pins are put back.
const PIN_REMOVAL_SETTLE: Duration = Duration::from_millis(200);

impl Group {
    /// The group interface was deleted under ipmpd: it is created again
    /// with its data addresses, the egress program and the routes it had.
    /// On failure [`Self::interface_lost`] stays set and the next tick
    /// tries again.
    pub(super) async fn recreate_interface(&mut self, nl: &Netlink) -> Result<()> {
        if !self.interface_lost {
            warn!(
                "Group interface {} was deleted; creating it again",
                self.name
            );
        }
        self.interface_lost = true;
        let (link, _) = group_interface(nl, &self.config).await?;
        self.index = link.index;
        self.dataplane.reattach_egress(&self.name)?;
        nl.restore_routes(&self.routes, self.index).await;
        // The new interface's carrier and MTU are set anew.
        self.carrier = None;
        self.mtu = 0;
        self.apply(nl, std::time::Instant::now()).await?;
        self.mirror_routes(nl).await?;
        self.interface_lost = false;
        // Whatever applications join on the new interface is announced;
        // what was held for the old one is let go.
        self.hold_cast_groups();
        info!(
            "Group interface {} is back with its data addresses, routes and egress program",
            self.name
        );
        Ok(())
    }

    /// Puts back what `change` says was removed: a data address, a test
    /// address, a member's policy rule or a mirrored route.
    pub(super) async fn heal(&mut self, nl: &Netlink, change: &Change) -> Result<()> {
        match *change {
            // Addresses and routes flushed with a deleted interface come
            // back with it.
            Change::AddressGone { index } if index == self.index => {
                if !exists(nl, &self.name, index).await? {
                    return Ok(());
                }
                let present = nl.addresses(index).await?;
                for addr in &self.config.data_addresses {
                    if !present.contains(&addr.addr()) {
                        nl.add_address(index, *addr, false).await?;
                        warn!(
                            "Data address {addr} of group {} was removed; added it again",
                            self.name
                        );
                    }
                }
            }
            Change::AddressGone { index } => {
                let member = self.members.iter().find(|m| {
                    m.link.as_ref().is_some_and(|l| l.index == index) && m.test_address.is_some()
                });
                if let Some((name, addr)) = member.and_then(|m| Some((&m.name, m.test_address?))) {
                    if exists(nl, name, index).await?
                        && !nl.addresses(index).await?.contains(&addr.addr())
                    {
                        nl.add_address(index, addr, true).await?;
                        warn!("Test address {addr} of {name} was removed; added it again");
                    }
                }
            }
            Change::RuleGone => {
                for m in self.members.iter().filter(|m| m.link.is_some()) {
                    if nl.ensure_member_rule(&m.name, m.table).await? {
                        warn!(
                            "The policy rule of {} (table {}) was removed; added it again",
                            m.name, m.table
                        );
                    }
                }
            }
            Change::TableRouteGone { table } => {
                if let Some(slot) = self
                    .members
                    .iter()
                    .find(|m| m.table == table)
                    .map(|m| m.slot)
                {
                    // Mirroring again adds back only what is missing.
                    let routes = self.routes.clone();
                    self.mirror_member(nl, slot, &routes).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Something was removed from the group's pin folder: what is
    /// missing is pinned again once the removal is over (a `rm -rf` of the
    /// folder is let finish, not fought pin by pin).
    pub fn on_pins_removed(&mut self) {
        self.pins_due
            .get_or_insert(Instant::now() + PIN_REMOVAL_SETTLE);
    }

    /// Pins again what was removed, when that is due.
    pub(super) fn restore_pins_if_due(&mut self) {
        if self.pins_due.is_none_or(|due| due > Instant::now()) {
            return;
        }
        self.pins_due = None;
        self.restore_pins();
        // The folder itself may have been removed and is made anew.
        if let Err(e) = self.pin_watch.rewatch() {
            warn!("Pins of group {}: {e:#}", self.name);
        }
    }

    /// Resolves when something was removed from the group's pin folder.
    pub async fn pins_removed(&self) -> Result<()> {
        self.pin_watch.removed().await
    }

    /// Pins removed from the group's pin folder are pinned again.
    pub(super) fn restore_pins(&mut self) {
        match self.dataplane.restore_pins() {
            Ok(restored) if restored.is_empty() => {}
            Ok(restored) => warn!(
                "Pins of group {} were removed; pinned again: {}",
                self.name,
                restored
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(e) => warn!("Pins of group {}: {e:#}", self.name),
        }
    }
}
