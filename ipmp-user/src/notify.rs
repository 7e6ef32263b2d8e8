//! Peer notifications: when a data address is bound to a new member, a
//! gratuitous ARP (IPv4) or an unsolicited neighbour advertisement with
//! the override flag (IPv6) goes out through that member, so peers and
//! switches send to it at once instead of when their caches expire.
use std::{
    io,
    mem::size_of,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::AsRawFd,
};

use anyhow::{Context, Result};
use ipmp_common::wire::{
    ALL_NODES_MAC, ALL_NODES_V6, ARPHRD_ETHER, ARPOP_REQUEST, ARP_ETH_IPV4_LEN, BROADCAST_MAC,
    ETH_ALEN, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMPV6, IPV4_ALEN, IPV6_HLEN, ND_HOP_LIMIT,
    ND_NA_FLAG_OVERRIDE, ND_NEIGHBOR_ADVERT, ND_NS_LEN, ND_OPT_LINKADDR_LEN,
    ND_OPT_TARGET_LINKADDR,
};
use socket2::{Domain, Socket, Type};

use crate::probe::socket::checksum;

/// An unsolicited neighbour advertisement with the target link-layer
/// address option, after its IPv6 header.
const NA_LEN: usize = ND_NS_LEN + ND_OPT_LINKADDR_LEN;

/// Sends peer notifications through any member (a packet socket that
/// receives nothing).
pub struct PeerNotifier {
    socket: Socket,
}

impl PeerNotifier {
    pub fn new() -> Result<PeerNotifier> {
        // Protocol 0: the socket sends only; no frame is queued to it.
        let socket = Socket::new(Domain::PACKET, Type::DGRAM, Some(0.into()))
            .context("opening a packet socket for peer notifications (needs CAP_NET_RAW)")?;
        socket.set_nonblocking(true)?;
        Ok(PeerNotifier { socket })
    }

    /// Announces that `address` is now reached through the member with
    /// interface index `ifindex` and hardware address `mac`.
    pub fn announce(&self, address: IpAddr, ifindex: u32, mac: [u8; 6]) -> io::Result<()> {
        match address {
            IpAddr::V4(a) => self.send(ifindex, ETH_P_ARP, BROADCAST_MAC, &gratuitous_arp(a, mac)),
            IpAddr::V6(a) => self.send(
                ifindex,
                ETH_P_IPV6,
                ALL_NODES_MAC,
                &unsolicited_advertisement(a, mac),
            ),
        }
    }

    fn send(&self, ifindex: u32, protocol: u16, to: [u8; 6], payload: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid start.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol.to_be();
        addr.sll_ifindex = ifindex as i32;
        addr.sll_halen = ETH_ALEN as u8;
        addr.sll_addr[..ETH_ALEN].copy_from_slice(&to);
        // SAFETY: `payload` and `addr` are valid for the lengths given.
        let sent = unsafe {
            libc::sendto(
                self.socket.as_raw_fd(),
                payload.as_ptr().cast(),
                payload.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// A gratuitous ARP request (RFC 5227's announcement): sender and target
/// are the address, the sender's hardware address is the member's.
pub fn gratuitous_arp(address: Ipv4Addr, mac: [u8; 6]) -> [u8; ARP_ETH_IPV4_LEN] {
    let mut arp = [0u8; ARP_ETH_IPV4_LEN];
    arp[0..2].copy_from_slice(&ARPHRD_ETHER.to_be_bytes());
    arp[2..4].copy_from_slice(&ETH_P_IP.to_be_bytes());
    arp[4] = ETH_ALEN as u8;
    arp[5] = IPV4_ALEN as u8;
    arp[6..8].copy_from_slice(&ARPOP_REQUEST.to_be_bytes());
    arp[8..14].copy_from_slice(&mac);
    arp[14..18].copy_from_slice(&address.octets());
    arp[24..28].copy_from_slice(&address.octets());
    arp
}

/// An unsolicited neighbour advertisement to all nodes (RFC 4861 7.2.6):
/// from the address, override set, with the member's link-layer address.
pub fn unsolicited_advertisement(address: Ipv6Addr, mac: [u8; 6]) -> [u8; IPV6_HLEN + NA_LEN] {
    let mut p = [0u8; IPV6_HLEN + NA_LEN];
    let (ip, na) = p.split_at_mut(IPV6_HLEN);
    ip[0] = 0x60; // version 6
    ip[4..6].copy_from_slice(&(na.len() as u16).to_be_bytes());
    ip[6] = IPPROTO_ICMPV6;
    ip[7] = ND_HOP_LIMIT;
    ip[8..24].copy_from_slice(&address.octets());
    ip[24..40].copy_from_slice(&ALL_NODES_V6.octets());
    na[0] = ND_NEIGHBOR_ADVERT;
    na[4] = ND_NA_FLAG_OVERRIDE;
    na[8..24].copy_from_slice(&address.octets());
    na[24] = ND_OPT_TARGET_LINKADDR;
    na[25] = 1; // in units of 8 bytes
    na[26..32].copy_from_slice(&mac);
    let mut pseudo = Vec::with_capacity(40 + na.len());
    pseudo.extend_from_slice(&ip[8..40]);
    pseudo.extend_from_slice(&(na.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, IPPROTO_ICMPV6]);
    pseudo.extend_from_slice(na);
    let sum = checksum(&pseudo);
    na[2..4].copy_from_slice(&sum.to_be_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0x5e, 0, 0x53, 1];

    #[test]
    fn gratuitous_arp_names_the_address_as_sender_and_target() {
        let arp = gratuitous_arp(Ipv4Addr::new(192, 0, 2, 200), MAC);
        assert_eq!(&arp[..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&arp[8..14], &MAC);
        assert_eq!(&arp[14..18], &[192, 0, 2, 200]);
        assert_eq!(&arp[18..24], &[0; 6]);
        assert_eq!(&arp[24..28], &[192, 0, 2, 200]);
    }

    #[test]
    fn unsolicited_advertisement_is_valid_nd() {
        let a: Ipv6Addr = "2001:db8::200".parse().unwrap();
        let p = unsolicited_advertisement(a, MAC);
        assert_eq!(p[0] >> 4, 6);
        assert_eq!(u16::from_be_bytes([p[4], p[5]]), 32);
        assert_eq!((p[6], p[7]), (58, 255));
        assert_eq!(&p[24..40], &ALL_NODES_V6.octets());
        let na = &p[40..];
        assert_eq!(na[0], 136);
        // Override, not solicited (it goes to all nodes).
        assert_eq!(na[4], 0x20);
        assert_eq!(&na[8..24], &a.octets());
        assert_eq!(&na[24..32], &[2, 1, 0x02, 0, 0x5e, 0, 0x53, 1]);
        // The checksum over the pseudo header and the message sums to zero.
        let mut pseudo = p[8..40].to_vec();
        pseudo.extend_from_slice(&32u32.to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 58]);
        pseudo.extend_from_slice(na);
        assert_eq!(checksum(&pseudo), 0);
    }
}
