//! Routing: the group interface's routes mirrored into every member's
//! table, their gateways and the IPv6 routers heard on each member handed
//! to the prober as targets.
use anyhow::Result;
use rtnetlink::packet_route::route::RouteMessage;

use super::{settings, Group};
use crate::netlink::{self, Netlink};

impl Group {
    /// Mirrors the group interface's routes into every member's table; their
    /// gateways are the members' routers to probe.
    pub(super) async fn mirror_routes(&mut self, nl: &Netlink) -> Result<()> {
        let routes = nl.routes_through(self.index).await?;
        for slot in self.members.slots() {
            self.mirror_member(nl, slot, &routes).await?;
        }
        self.probing.set_gateways(&netlink::gateways(&routes));
        let (v4, v6) =
            settings::onlink_subnets(&self.config.data_addresses, &netlink::destinations(&routes));
        (self.configured.onlink_v4, self.configured.onlink_v6) = (v4, v6);
        self.routes = routes;
        // Before the first apply there is nothing to settle yet.
        if self.settings.is_some() {
            self.settle_settings()?;
        }
        Ok(())
    }

    /// Mirrors `routes` into the member in `slot`'s table, if its interface
    /// exists.
    pub(super) async fn mirror_member(
        &self,
        nl: &Netlink,
        slot: u8,
        routes: &[RouteMessage],
    ) -> Result<()> {
        let m = self.members.get(slot);
        let Some(link) = &m.link else { return Ok(()) };
        nl.mirror_routes(routes, link.index, m.table).await
    }

    /// The kernel announces no new router flag: the routers it heard are
    /// read on each refresh, for the members that probe over IPv6.
    pub(super) async fn read_heard_routers(&mut self, nl: &Netlink) -> Result<()> {
        let slots = self.members.slots();
        if !slots.iter().any(|&s| self.probing.probes_v6(s)) {
            return Ok(());
        }
        let heard = nl.heard_routers().await?;
        for slot in slots {
            let index = self.members.get(slot).ifindex();
            if let (true, Some(index)) = (self.probing.probes_v6(slot), index) {
                let mine = heard.iter().filter(|(at, _)| *at == index);
                self.probing
                    .set_heard_routers(slot, mine.map(|&(_, r)| r).collect());
            }
        }
        Ok(())
    }
}
