//! A reload applied to a running group as a difference.
use std::time::Instant;

use anyhow::{Context, Result};
use ipmp_common::data_address_key;
use tracing::warn;

use super::{settings, slots, Group};
use crate::{
    config::{DaemonConfig, GroupConfig, MemberConfig},
    netlink::Netlink,
};

impl Group {
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
        self.remove_changed_members(nl, new).await?;
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
            self.add_configured_member(nl, m).await?;
        }
        self.reconfigure_addresses(nl, new).await?;
        self.configured = settings::dataplane_settings(new, self.configured.probe_key);
        self.config = new.clone();
        self.apply(nl, Instant::now()).await?;
        self.mirror_routes(nl).await
    }

    /// Removes the members that left `new`, or changed (they come back as
    /// added ones).
    async fn remove_changed_members(&mut self, nl: &Netlink, new: &GroupConfig) -> Result<()> {
        while let Some(i) = self
            .config
            .members
            .iter()
            .position(|m| !new.members.contains(m))
        {
            let old = self.config.members.remove(i);
            if let Some(slot) = self.members.by_name(&old.interface).map(|m| m.slot) {
                self.remove_member(nl, slot).await?;
            }
        }
        Ok(())
    }

    /// Adds member `m` in the lowest free slot; on failure, takes the
    /// half-added member out again, so the group stays as its
    /// configuration says.
    async fn add_configured_member(&mut self, nl: &Netlink, m: &MemberConfig) -> Result<()> {
        let slot = slots::free_slot(&self.members.slots()).context("no free member slot")?;
        if let Err(e) = self.add_member(nl, m, slot).await {
            if let Some(slot) = self.members.by_name(&m.interface).map(|m| m.slot) {
                if let Err(undo) = self.remove_member(nl, slot).await {
                    warn!("Removing {} again: {undo:#}", m.interface);
                }
            }
            return Err(e.context(format!("adding {} to group {}", m.interface, self.name)));
        }
        self.config.members.push(m.clone());
        Ok(())
    }

    /// The data addresses that left `new` are removed and unbound, the new
    /// ones added; the ones that stay keep their binding.
    async fn reconfigure_addresses(&mut self, nl: &Netlink, new: &GroupConfig) -> Result<()> {
        let old = &self.config.data_addresses;
        for addr in old.iter().filter(|a| !new.data_addresses.contains(a)) {
            nl.delete_address(self.index, *addr).await?;
            self.dataplane
                .unbind_data_address(&data_address_key(addr.addr()))?;
        }
        self.bindings = slots::carry_bindings(old, &self.bindings, &new.data_addresses);
        // A removed address is no longer announced.
        self.notifications
            .retain(|a| new.data_addresses.iter().any(|d| d.addr() == a));
        for addr in new.data_addresses.iter().filter(|a| !old.contains(a)) {
            nl.add_address(self.index, *addr, false).await?;
        }
        Ok(())
    }
}
