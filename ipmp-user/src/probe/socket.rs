//! Sending probes: ICMP and ICMPv6 echo requests from a member's test
//! address (IPv4) or link-local address (IPv6), bound to the member, with
//! TTL / hop limit 1. Replies never come back here: XDP takes them.
use std::{
    io,
    mem::size_of,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6},
    os::fd::AsRawFd,
};

use anyhow::{Context, Result};
use ipmp_common::{
    probe_token,
    wire::{ICMPV6_ECHO_REQUEST, ICMP_ECHO, ICMP_ECHO_HLEN},
    ProbePayload,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Probes reach only neighbours on the member's link.
const PROBE_HOPS: u32 = 1;

pub struct ProbeSocket {
    socket: Socket,
    v6: bool,
    identifier: u16,
}

impl ProbeSocket {
    /// An IPv4 probe socket on `member`, sending from `test_address`.
    pub fn v4(member: &str, test_address: Ipv4Addr, identifier: u16) -> Result<ProbeSocket> {
        let socket = raw(Domain::IPV4, Protocol::ICMPV4, member)?;
        socket
            .bind(&SocketAddr::new(test_address.into(), 0).into())
            .with_context(|| format!("binding the probe socket to test address {test_address}"))?;
        socket.set_ttl_v4(PROBE_HOPS)?;
        socket.set_multicast_ttl_v4(PROBE_HOPS)?;
        socket.set_multicast_loop_v4(false)?;
        // Raw ICMP sockets get a copy of every ICMP packet: filter them all
        // out (ICMP_FILTER's mask lists the types to drop).
        set_raw_option(&socket, libc::SOL_RAW, ICMP_FILTER, &u32::MAX)?;
        Ok(ProbeSocket {
            socket,
            v6: false,
            identifier,
        })
    }

    /// An IPv6 probe socket on `member` (ifindex `scope`), sending from its
    /// link-local address.
    pub fn v6(
        member: &str,
        scope: u32,
        link_local: Ipv6Addr,
        identifier: u16,
    ) -> Result<ProbeSocket> {
        let socket = raw(Domain::IPV6, Protocol::ICMPV6, member)?;
        socket
            .bind(&SocketAddrV6::new(link_local, 0, 0, scope).into())
            .with_context(|| format!("binding the probe socket to {link_local}%{member}"))?;
        socket.set_unicast_hops_v6(PROBE_HOPS)?;
        socket.set_multicast_hops_v6(PROBE_HOPS)?;
        socket.set_multicast_loop_v6(false)?;
        socket.set_multicast_if_v6(scope)?;
        // ICMP6_FILTER: all bits set blocks every type.
        set_raw_option(&socket, libc::IPPROTO_ICMPV6, ICMP6_FILTER, &[u32::MAX; 8])?;
        Ok(ProbeSocket {
            socket,
            v6: true,
            identifier,
        })
    }

    /// Sends one probe. `sent_ns` is CLOCK_MONOTONIC now ([`monotonic_ns`]).
    pub fn send(
        &self,
        target: IpAddr,
        scope: u32,
        seq: u16,
        kind: u32,
        key: &[u64; 2],
    ) -> io::Result<()> {
        let sent_ns = monotonic_ns();
        let payload = ProbePayload {
            sent_ns,
            token: probe_token(key, self.identifier, seq, kind, sent_ns),
            kind,
            _pad: 0,
        };
        let mut packet = [0u8; ICMP_ECHO_HLEN + size_of::<ProbePayload>()];
        packet[0] = if self.v6 {
            ICMPV6_ECHO_REQUEST
        } else {
            ICMP_ECHO
        };
        packet[4..6].copy_from_slice(&self.identifier.to_be_bytes());
        packet[6..8].copy_from_slice(&seq.to_be_bytes());
        packet[8..16].copy_from_slice(&payload.sent_ns.to_ne_bytes());
        packet[16..24].copy_from_slice(&payload.token.to_ne_bytes());
        packet[24..28].copy_from_slice(&payload.kind.to_ne_bytes());
        // The kernel computes ICMPv6 checksums on raw sockets, not ICMP ones.
        if !self.v6 {
            let sum = checksum(&packet);
            packet[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        let to: SockAddr = match target {
            IpAddr::V4(a) => SocketAddr::new(a.into(), 0).into(),
            IpAddr::V6(a) => SocketAddrV6::new(a, 0, 0, scope).into(),
        };
        self.socket.send_to(&packet, &to).map(drop)
    }
}

/// CLOCK_MONOTONIC in ns: the clock of the kernel's bpf_ktime_get_ns.
pub fn monotonic_ns() -> u64 {
    // CLOCK_MONOTONIC cannot fail on Linux.
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    })
}

/// ICMP_FILTER (linux/icmp.h) and ICMP6_FILTER (linux/icmpv6.h).
const ICMP_FILTER: libc::c_int = 1;
const ICMP6_FILTER: libc::c_int = 1;

fn raw(domain: Domain, protocol: Protocol, member: &str) -> Result<Socket> {
    let socket = Socket::new(domain, Type::RAW, Some(protocol))
        .context("opening a raw ICMP socket (needs CAP_NET_RAW)")?;
    socket.set_nonblocking(true)?;
    socket
        .bind_device(Some(member.as_bytes()))
        .with_context(|| format!("binding the probe socket to {member}"))?;
    Ok(socket)
}

fn set_raw_option<T>(
    socket: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a valid T for the option's length.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            value as *const T as *const libc::c_void,
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The Internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::checksum;

    #[test]
    fn checksum_of_a_packet_with_its_checksum_is_zero() {
        let mut packet = [8u8, 0, 0, 0, 0x49, 0x01, 0, 7, 1, 2, 3, 4, 5];
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(checksum(&packet), 0);
    }
}
