//! rtnetlink plumbing: links (watching members, creating the group
//! interface), addresses, and the per-member policy routing that makes
//! `bpf_redirect_neigh` resolve next hops on the member.
use std::{
    net::{IpAddr, Ipv6Addr},
    time::Instant,
};

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use ipnet::IpNet;
use rtnetlink::{
    packet_core::{NetlinkMessage, NetlinkPayload},
    packet_route::{
        address::{AddressAttribute, AddressFlags},
        link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, LinkXdp, XdpAttached},
        neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage},
        route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType},
        rule::{RuleAction, RuleAttribute, RuleMessage},
        AddressFamily, RouteNetlinkMessage,
    },
    Handle, IpVersion, LinkUnspec, LinkVeth, MulticastGroup,
};
use tokio::sync::mpsc::UnboundedReceiver;

/// What ipmpd needs to know of a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// Administratively up (IFF_UP).
    pub admin_up: bool,
    /// Carrier (IFF_LOWER_UP): the cable is in.
    pub carrier: bool,
    pub mtu: u32,
    pub mac: [u8; 6],
    pub veth: bool,
    /// How an XDP program is attached (`native`, `generic`, `offloaded`),
    /// if one is.
    pub xdp: Option<&'static str>,
    /// A veth's peer: its index, and the id of its network namespace as
    /// seen from here (`None`: the same namespace).
    pub peer: Option<(u32, Option<i32>)>,
}

impl Link {
    fn from_message(msg: &LinkMessage) -> Option<Link> {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            admin_up: msg.header.flags.contains(LinkFlags::Up),
            carrier: msg.header.flags.contains(LinkFlags::LowerUp),
            mtu: 0,
            mac: [0; 6],
            veth: false,
            xdp: None,
            peer: None,
        };
        let mut netnsid = None;
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Mtu(m) => link.mtu = *m,
                LinkAttribute::Address(a) if a.len() == 6 => link.mac.copy_from_slice(a),
                LinkAttribute::Xdp(xdp) => {
                    link.xdp = xdp.iter().find_map(|x| match x {
                        LinkXdp::Attached(XdpAttached::Driver) => Some("native"),
                        LinkXdp::Attached(XdpAttached::SocketBuffer) => Some("generic"),
                        LinkXdp::Attached(XdpAttached::Hardware) => Some("offloaded"),
                        _ => None,
                    })
                }
                LinkAttribute::Link(index) => link.peer = Some((*index, None)),
                LinkAttribute::LinkNetNsId(id) => netnsid = Some(*id),
                LinkAttribute::LinkInfo(infos) => {
                    link.veth = infos
                        .iter()
                        .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Veth)))
                }
                _ => {}
            }
        }
        if let Some((_, ns)) = &mut link.peer {
            *ns = netnsid;
        }
        (!link.name.is_empty()).then_some(link)
    }
}

/// A change the kernel announced.
#[derive(Debug)]
pub enum Change {
    Link(Link),
    LinkGone(Link),
    /// A main-table route through `oif` was added or removed.
    Route {
        oif: u32,
    },
    /// A route of another table (a member's, say) was removed.
    TableRouteGone {
        table: u32,
    },
    /// An address was removed from the link `index`.
    AddressGone {
        index: u32,
    },
    /// A policy rule was removed.
    RuleGone,
}

/// Subscribes to link, address, route and rule changes (what `ip monitor`
/// shows), each stamped with the moment it was read from the kernel.
pub fn watch() -> Result<UnboundedReceiver<(Instant, Change)>> {
    let (conn, _handle, mut messages) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Link,
        MulticastGroup::Ipv4Route,
        MulticastGroup::Ipv6Route,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
        MulticastGroup::Ipv4Rule,
        MulticastGroup::Ipv6Rule,
    ])
    .context("subscribing to rtnetlink link and route events")?;
    tokio::spawn(conn);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((msg, _)) = messages.next().await {
            if let Some(change) = change_of(msg) {
                if tx.send((Instant::now(), change)).is_err() {
                    break;
                }
            }
        }
    });
    Ok(rx)
}

fn change_of(msg: NetlinkMessage<RouteNetlinkMessage>) -> Option<Change> {
    let NetlinkPayload::InnerMessage(inner) = msg.payload else {
        return None;
    };
    match inner {
        RouteNetlinkMessage::NewLink(l) => Link::from_message(&l).map(Change::Link),
        RouteNetlinkMessage::DelLink(l) => Link::from_message(&l).map(Change::LinkGone),
        RouteNetlinkMessage::NewRoute(r) | RouteNetlinkMessage::DelRoute(r)
            if table_of(&r) == RouteHeader::RT_TABLE_MAIN as u32 =>
        {
            oif_of(&r).map(|oif| Change::Route { oif })
        }
        RouteNetlinkMessage::DelRoute(r) => Some(Change::TableRouteGone {
            table: table_of(&r),
        }),
        RouteNetlinkMessage::DelAddress(a) => Some(Change::AddressGone {
            index: a.header.index,
        }),
        RouteNetlinkMessage::DelRule(_) => Some(Change::RuleGone),
        _ => None,
    }
}

fn table_of(r: &RouteMessage) -> u32 {
    r.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(r.header.table as u32)
}

fn oif_of(r: &RouteMessage) -> Option<u32> {
    r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
    })
}

/// Requests to the kernel.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

/// Where ipmpd's member policy rules sit: before the main table (32766).
const MEMBER_RULE_PRIORITY: u32 = 1000;

impl Netlink {
    pub fn connect() -> Result<Netlink> {
        let (conn, handle, _) = rtnetlink::new_connection().context("opening rtnetlink")?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    pub async fn links(&self) -> Result<Vec<Link>> {
        let msgs: Vec<LinkMessage> = self.handle.link().get().execute().try_collect().await?;
        Ok(msgs.iter().filter_map(Link::from_message).collect())
    }

    pub async fn link(&self, name: &str) -> Result<Option<Link>> {
        Ok(self
            .link_message(name)
            .await?
            .as_ref()
            .and_then(Link::from_message))
    }

    async fn link_message(&self, name: &str) -> Result<Option<LinkMessage>> {
        let mut found = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match found.try_next().await {
            Ok(msg) => Ok(msg),
            // ENODEV: no such interface.
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
            Err(e) => Err(e).with_context(|| format!("looking up interface {name}")),
        }
    }

    /// Whether interface `name` still runs an XDP program (false when it
    /// does not exist).
    pub async fn has_xdp(&self, name: &str) -> Result<bool> {
        use rtnetlink::packet_route::link::{LinkXdp, XdpAttached};
        let msg = self.link_message(name).await?;
        Ok(msg.is_some_and(|m| {
            m.attributes.iter().any(|a| match a {
                LinkAttribute::Xdp(xdp) => xdp
                    .iter()
                    .any(|x| matches!(x, LinkXdp::Attached(kind) if *kind != XdpAttached::None)),
                _ => false,
            })
        }))
    }

    /// Creates a veth pair `name` / `peer`, both NOARP.
    pub async fn create_veth(&self, name: &str, peer: &str) -> Result<()> {
        let msg = LinkVeth::new(name, peer).arp(false).build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .with_context(|| format!("creating veth pair {name}/{peer}"))?;
        let peer_msg = LinkUnspec::new_with_name(peer).arp(false).build();
        self.handle.link().change(peer_msg).execute().await?;
        Ok(())
    }

    pub async fn set_up(&self, name: &str, up: bool) -> Result<()> {
        let b = LinkUnspec::new_with_name(name);
        let msg = if up { b.up() } else { b.down() }.build();
        self.handle
            .link()
            .change(msg)
            .execute()
            .await
            .with_context(|| format!("setting {name} {}", if up { "up" } else { "down" }))
    }

    pub async fn set_mtu(&self, name: &str, mtu: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_name(name).mtu(mtu).build();
        self.handle
            .link()
            .change(msg)
            .execute()
            .await
            .with_context(|| format!("setting the MTU of {name} to {mtu}"))
    }

    pub async fn delete_link(&self, index: u32) -> Result<()> {
        self.handle
            .link()
            .del(index)
            .execute()
            .await
            .context("deleting link")
    }

    /// Adds (or refreshes) `addr` on the link. Test addresses get
    /// `noprefixroute` so their prefix never competes with the group's routes.
    pub async fn add_address(&self, index: u32, addr: IpNet, noprefixroute: bool) -> Result<()> {
        let mut req = self
            .handle
            .address()
            .add(index, addr.addr(), addr.prefix_len())
            .replace();
        let mut flags = AddressFlags::Nodad;
        if noprefixroute {
            flags |= AddressFlags::Noprefixroute;
        }
        req.message_mut()
            .attributes
            .push(AddressAttribute::Flags(flags));
        req.execute()
            .await
            .with_context(|| format!("adding address {addr}"))
    }

    pub async fn delete_address(&self, index: u32, addr: IpNet) -> Result<()> {
        let mut found = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(addr.addr())
            .execute();
        while let Some(msg) = found.try_next().await? {
            self.handle.address().del(msg).execute().await?;
        }
        Ok(())
    }

    /// The addresses on the link.
    pub async fn addresses(&self, index: u32) -> Result<Vec<IpAddr>> {
        let msgs: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await?;
        Ok(msgs
            .iter()
            .flat_map(|m| &m.attributes)
            .filter_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            })
            .collect())
    }

    /// Whether the veth peer of `link` runs a native XDP program (asked in
    /// the peer's namespace, by its id): then XDP_TX frames from `link`
    /// reach it in native mode too.
    pub async fn peer_runs_native_xdp(&self, link: &Link) -> Result<bool> {
        let Some((index, netnsid)) = link.peer else {
            return Ok(false);
        };
        let mut request = self.handle.link().get().match_index(index);
        if let Some(id) = netnsid {
            request
                .message_mut()
                .attributes
                .push(LinkAttribute::IfNetnsId(id));
        }
        let found: Vec<LinkMessage> = request.execute().try_collect().await?;
        Ok(found
            .iter()
            .filter_map(Link::from_message)
            .any(|peer| peer.xdp == Some("native")))
    }

    /// The routers the kernel heard, by link index: the link-local
    /// neighbours it marked as routers (from Router Advertisements, or the
    /// router flag of neighbour advertisements). One dump for all links.
    pub async fn heard_routers(&self) -> Result<Vec<(u32, Ipv6Addr)>> {
        let msgs: Vec<NeighbourMessage> = self
            .handle
            .neighbours()
            .get()
            .set_address_family(AddressFamily::Inet6)
            .execute()
            .try_collect()
            .await?;
        Ok(msgs
            .iter()
            .filter(|m| m.header.flags.contains(NeighbourFlags::Router))
            .flat_map(|m| m.attributes.iter().map(move |a| (m.header.ifindex, a)))
            .filter_map(|(index, a)| match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6))
                    if v6.is_unicast_link_local() =>
                {
                    Some((index, *v6))
                }
                _ => None,
            })
            .collect())
    }

    /// The link's IPv6 link-local address, once it has one that passed DAD.
    pub async fn link_local(&self, index: u32) -> Result<Option<Ipv6Addr>> {
        let mut found = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        while let Some(msg) = found.try_next().await? {
            let tentative = msg.attributes.iter().any(|a| {
                matches!(a, AddressAttribute::Flags(f) if f.intersects(AddressFlags::Tentative | AddressFlags::Dadfailed))
            });
            let ll = msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(IpAddr::V6(v6)) if v6.is_unicast_link_local() => {
                    Some(*v6)
                }
                _ => None,
            });
            if let (Some(ll), false) = (ll, tentative) {
                return Ok(Some(ll));
            }
        }
        Ok(None)
    }

    /// Unicast routes of the main table that leave through `oif`.
    pub async fn routes_through(&self, oif: u32) -> Result<Vec<RouteMessage>> {
        let mut all = Vec::new();
        for version in [IpVersion::V4, IpVersion::V6] {
            let query = route_query(version);
            let msgs: Vec<RouteMessage> = self
                .handle
                .route()
                .get(query)
                .execute()
                .try_collect()
                .await?;
            all.extend(msgs.into_iter().filter(|r| {
                table_of(r) == RouteHeader::RT_TABLE_MAIN as u32
                    && r.header.kind == RouteType::Unicast
                    && oif_of(r) == Some(oif)
            }));
        }
        Ok(all)
    }

    /// Makes `table` hold exactly `routes` (the group interface's), with the
    /// member as output interface.
    pub async fn mirror_routes(
        &self,
        routes: &[RouteMessage],
        member: u32,
        table: u32,
    ) -> Result<()> {
        let wanted: Vec<RouteMessage> = routes.iter().map(|r| mirrored(r, member, table)).collect();
        let mut present = Vec::new();
        for version in [IpVersion::V4, IpVersion::V6] {
            let msgs: Vec<RouteMessage> = self
                .handle
                .route()
                .get(route_query(version))
                .execute()
                .try_collect()
                .await?;
            present.extend(msgs.into_iter().filter(|r| table_of(r) == table));
        }
        for r in &present {
            if !wanted.iter().any(|w| route_key(w) == route_key(r)) {
                self.handle.route().del(r.clone()).execute().await.ok();
            }
        }
        self.add_routes(wanted).await;
        Ok(())
    }

    /// Puts `routes` (those of a group interface that was deleted) back in
    /// the main table through `oif`, the interface created in its place.
    pub async fn restore_routes(&self, routes: &[RouteMessage], oif: u32) {
        let main = RouteHeader::RT_TABLE_MAIN as u32;
        self.add_routes(routes.iter().map(|r| mirrored(r, oif, main)).collect())
            .await;
    }

    /// Adds (or replaces) `routes`, on-link ones first: a gateway must be
    /// reachable in its table. A route the kernel refuses is skipped.
    async fn add_routes(&self, mut routes: Vec<RouteMessage>) {
        routes.sort_by_key(|r| gateway_of(r).is_some());
        for r in routes {
            let key = route_key(&r);
            if let Err(e) = self.handle.route().add(r).replace().execute().await {
                // A member that is administratively down takes no routes; its
                // table is filled again when it comes up.
                tracing::debug!("route {key:?} not added: {e}");
            }
        }
    }

    /// `ip rule add oif MEMBER lookup TABLE`, for both families, once.
    /// Returns whether a rule was missing.
    pub async fn ensure_member_rule(&self, member: &str, table: u32) -> Result<bool> {
        let mut added = false;
        for (version, present) in self.member_rules(member, table).await? {
            if present.is_empty() {
                added = true;
                let req = self
                    .handle
                    .rule()
                    .add()
                    .output_interface(member)
                    .table_id(table)
                    // The builder leaves the action unspecified, which the
                    // kernel keeps as a rule that does nothing.
                    .action(RuleAction::ToTable)
                    .priority(MEMBER_RULE_PRIORITY);
                let done = match version {
                    IpVersion::V4 => req.v4().execute().await,
                    IpVersion::V6 => req.v6().execute().await,
                };
                done.with_context(|| format!("adding the policy rule for {member}"))?;
            }
        }
        Ok(added)
    }

    /// Removes the member's policy rules and empties its table.
    pub async fn remove_member_routing(&self, member: &str, table: u32) -> Result<()> {
        for (_, present) in self.member_rules(member, table).await? {
            for rule in present {
                self.handle.rule().del(rule).execute().await?;
            }
        }
        self.mirror_routes(&[], 0, table).await
    }

    async fn member_rules(
        &self,
        member: &str,
        table: u32,
    ) -> Result<Vec<(IpVersion, Vec<RuleMessage>)>> {
        let mut out = Vec::new();
        for version in [IpVersion::V4, IpVersion::V6] {
            let rules: Vec<RuleMessage> = self
                .handle
                .rule()
                .get(version.clone())
                .execute()
                .try_collect()
                .await?;
            let mine = rules
                .into_iter()
                .filter(|r| {
                    r.attributes
                        .contains(&RuleAttribute::Oifname(member.to_string()))
                        && r.attributes.contains(&RuleAttribute::Table(table))
                })
                .collect();
            out.push((version, mine));
        }
        Ok(out)
    }
}

fn route_query(version: IpVersion) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = match version {
        IpVersion::V4 => AddressFamily::Inet,
        IpVersion::V6 => AddressFamily::Inet6,
    };
    msg
}

/// The distinct gateways of `routes`: the routers a member can probe.
pub fn gateways(routes: &[RouteMessage]) -> Vec<IpAddr> {
    let mut found = Vec::new();
    for g in routes.iter().filter_map(|r| gateway_of(r).and_then(ip_of)) {
        if !found.contains(&g) {
            found.push(g);
        }
    }
    found
}

/// Each route's destination, and whether it goes through a gateway.
pub fn destinations(routes: &[RouteMessage]) -> Vec<(IpNet, bool)> {
    routes
        .iter()
        .filter_map(|r| {
            let prefix = r.header.destination_prefix_length;
            let dst = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(d) => ip_of(d),
                _ => None,
            });
            let dst = match (dst, r.header.address_family) {
                (Some(d), _) => d,
                (None, AddressFamily::Inet) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                (None, AddressFamily::Inet6) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                (None, _) => return None,
            };
            let via_gateway = gateway_of(r).is_some()
                || r.attributes
                    .iter()
                    .any(|a| matches!(a, RouteAttribute::MultiPath(_)));
            Some((IpNet::new(dst, prefix).ok()?, via_gateway))
        })
        .collect()
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn gateway_of(r: &RouteMessage) -> Option<&RouteAddress> {
    r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Gateway(g) => Some(g),
        _ => None,
    })
}

/// Identity of a route within one table.
fn route_key(
    r: &RouteMessage,
) -> (
    AddressFamily,
    u8,
    Option<RouteAddress>,
    Option<RouteAddress>,
) {
    let dst = r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(d) => Some(d.clone()),
        _ => None,
    });
    (
        r.header.address_family,
        r.header.destination_prefix_length,
        dst,
        gateway_of(r).cloned(),
    )
}

/// `r` as it should stand in a member's table.
fn mirrored(r: &RouteMessage, member: u32, table: u32) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header = r.header.clone();
    // Tables above 255 go in the attribute; the header says "compat".
    m.header.table = 252;
    m.header.flags = Default::default();
    m.attributes = r
        .attributes
        .iter()
        .filter(|a| {
            matches!(
                a,
                RouteAttribute::Destination(_)
                    | RouteAttribute::Gateway(_)
                    | RouteAttribute::PrefSource(_)
                    | RouteAttribute::Priority(_)
                    | RouteAttribute::Preference(_)
            )
        })
        .cloned()
        .collect();
    m.attributes.push(RouteAttribute::Oif(member));
    m.attributes.push(RouteAttribute::Table(table));
    m
}

/// The member's routing table: a fixed base plus a hash of its name, so the
/// same member finds the same table after a restart.
pub fn member_table(member: &str) -> u32 {
    const BASE: u32 = 0x4950_0000;
    // FNV-1a, folded to 16 bits.
    let h = member.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    });
    BASE | ((h ^ (h >> 16)) & 0xffff)
}
