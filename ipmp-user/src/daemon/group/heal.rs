//! Self-healing: what an operator or another program removes from a group
//! is put back, with a log line. The group interface (with its data
//! addresses, egress program and routes) on its netlink removal event; the
//! pins when [`Group::restore_pins`] finds them gone (bpffs sends no
//! events; ipmpd holds every pinned object, so nothing stopped meanwhile).
use anyhow::{Context, Result};
use tracing::{info, warn};

use super::Group;
use crate::{
    config::GroupConfig,
    netlink::{Link, Netlink},
    sysctl,
};

/// The group interface of `config`, created (a veth pair) when missing,
/// up and carrying the data addresses.
pub(super) async fn group_interface(nl: &Netlink, config: &GroupConfig) -> Result<Link> {
    let (name, peer) = (&config.name, config.peer_interface());
    let link = match nl.link(name).await? {
        Some(link) => link,
        None => {
            nl.create_veth(name, &peer).await?;
            info!("Created group interface {name} (veth, peer {peer})");
            nl.link(name)
                .await?
                .context("group interface vanished after creation")?
        }
    };
    sysctl::quiet_peer(&peer)?;
    nl.set_up(name, true).await?;
    for addr in &config.data_addresses {
        nl.add_address(link.index, *addr, false).await?;
    }
    Ok(link)
}

impl Group {
    /// The group interface was deleted under ipmpd: it is created again
    /// with its data addresses, the egress program and the routes it had.
    pub(super) async fn recreate_interface(&mut self, nl: &Netlink) -> Result<()> {
        warn!(
            "Group interface {} was deleted; creating it again",
            self.name
        );
        let link = group_interface(nl, &self.config).await?;
        self.index = link.index;
        self.dataplane.reattach_egress(&self.name)?;
        nl.restore_routes(&self.routes, self.index).await;
        // The new interface's carrier and MTU are set anew.
        self.carrier = None;
        self.mtu = 0;
        self.apply(nl, std::time::Instant::now()).await?;
        self.mirror_routes(nl).await?;
        info!(
            "Group interface {} is back with its data addresses, routes and egress program",
            self.name
        );
        Ok(())
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
