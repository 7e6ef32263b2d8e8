//! Inbound binding: each data address is received on one active member,
//! written to the dataplane, logged, and announced to the peers through
//! that member ([`super::notifications`] holds the schedule).
use std::time::Duration;

use anyhow::Result;
use ipmp_common::{data_address_key, NO_MEMBER};
use tracing::{warn, Level};

use super::Group;
use crate::policy::inbound;

impl Group {
    /// Binds the data addresses to the `active` members (slots) for inbound
    /// traffic; every new binding is written to the dataplane, logged, and
    /// announced to the peers through its member.
    pub(super) fn bind_inbound(&mut self, active: &[u8]) -> Result<()> {
        let next = inbound::bind(&self.bindings, active);
        let now = self.epoch.elapsed();
        for (i, &bound) in next.iter().enumerate() {
            if bound == self.bindings[i] {
                continue;
            }
            let address = self.config.data_addresses[i].addr();
            self.dataplane
                .bind_data_address(data_address_key(address), bound.unwrap_or(NO_MEMBER))?;
            self.notifications.forget(address);
            let Some(slot) = bound else { continue };
            let name = self.members.name_of(slot).to_string();
            self.announce(
                Level::INFO,
                "address_bound",
                Some(&name),
                &format!(
                    "Data address {address} of group {} now bound to {name}",
                    self.name
                ),
            );
            self.notifications
                .bound(address, slot, self.peer_notifications, now);
        }
        if next != self.bindings {
            self.bindings = next;
            self.hold_solicited_groups();
        }
        self.notify_peers(now);
        Ok(())
    }

    /// Sends the peer notifications that are due at `now`.
    pub(super) fn notify_peers(&mut self, now: Duration) {
        for (address, slot) in self.notifications.take_due(now) {
            let Some(link) = self.members.by_slot(slot).and_then(|m| m.link.as_ref()) else {
                continue;
            };
            if let Err(e) = self.notifier.announce(address, link.index, link.mac) {
                warn!(
                    "Cannot notify peers that {address} is now on {}: {e}",
                    link.name
                );
            }
        }
    }
}
