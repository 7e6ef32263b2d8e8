//! Bounds-checked packet parsing shared by the programs. Every read is
//! checked against the end of the packet, here and nowhere else; what
//! cannot be parsed is `Err(())` (the frame is not ours: it goes on to
//! the kernel), never guessed.
//!
//! The member program parses the Ethernet and IP headers once and hands
//! them to echo, neighbour and probe; the group egress program classifies
//! a frame with [`classify`].
use core::{marker::PhantomData, mem::size_of};

use ipmp_common::{
    wire::{
        mac_is_group, ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6,
        ETH_P_QINQ1, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, IPV4_FRAGMENT_MASK, IPV6_DEST_OPTS,
        IPV6_HLEN, IPV6_HOP_BY_HOP, IPV6_ROUTING,
    },
    MAX_BROADCASTS,
};
use network_types::{
    eth::EthHdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
};

/// A pointer to a `T` at `offset`, if the packet holds all of it.
#[inline(always)]
pub fn ptr_at<T>(start: usize, end: usize, offset: usize) -> Option<*const T> {
    if start + offset + size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *const T)
}

/// The frame a program runs on: the packet between `start` and `end`.
#[derive(Clone, Copy)]
pub struct Frame<'a> {
    start: usize,
    end: usize,
    packet: PhantomData<&'a mut [u8]>,
}

impl<'a> Frame<'a> {
    #[inline(always)]
    pub fn new(start: usize, end: usize) -> Frame<'a> {
        Frame {
            start,
            end,
            packet: PhantomData,
        }
    }

    /// Bytes in the frame.
    #[inline(always)]
    pub fn len(self) -> usize {
        self.end - self.start
    }

    /// The header (or any plain `T`) at `offset`, if the frame holds all of
    /// it; the programs that answer rewrite the frame through it.
    #[inline(always)]
    pub fn header<T>(self, offset: usize) -> Result<&'a mut T, ()> {
        let at = ptr_at::<T>(self.start, self.end, offset).ok_or(())?;
        // SAFETY: the frame holds the whole `T` at `at` (checked just now),
        // which is not null (packet data never is), and the packet stays
        // valid and the program's alone for its run (no helper here moves
        // or resizes it). The headers are plain bytes, any pattern valid;
        // programs read a header through one reference at a time and
        // rewrite only after their checks.
        unsafe {
            core::hint::assert_unchecked(!at.is_null());
            Ok(&mut *(at as *mut T))
        }
    }

    /// A copy of the `T` at `offset`, which may be unaligned.
    #[inline(always)]
    pub fn read<T: Copy>(self, offset: usize) -> Result<T, ()> {
        Ok(self.header::<Unaligned<T>>(offset)?.0)
    }
}

/// A `T` at any address: read by value only.
#[repr(C, packed)]
struct Unaligned<T>(T);

/// `Ok` when `condition` holds, `Err(())` (not ours) otherwise.
#[inline(always)]
pub fn ensure(condition: bool) -> Result<(), ()> {
    if condition {
        Ok(())
    } else {
        Err(())
    }
}

/// A frame's network header, parsed once by the member program.
pub enum Ip<'a> {
    V4(&'a mut Ipv4Hdr),
    V6(&'a mut Ipv6Hdr),
}

/// EtherTypes as an Ethernet header holds them (big-endian): a frame's
/// type is compared with these as it is, with no byte swap per frame.
pub const ETHER_ARP: u16 = ETH_P_ARP.to_be();
pub const ETHER_IP: u16 = ETH_P_IP.to_be();
pub const ETHER_IPV6: u16 = ETH_P_IPV6.to_be();

/// Whether a frame carries a VLAN tag (its outer EtherType says so):
/// frames of another VLAN, not ours to answer.
#[inline(always)]
pub fn vlan_tagged(eth: &EthHdr) -> bool {
    let ether_type = eth.ether_type;
    ether_type == ETH_P_8021Q.to_be()
        || ether_type == ETH_P_8021AD.to_be()
        || ether_type == ETH_P_QINQ1.to_be()
}

/// An IPv4 source no host answers (RFC 1812 5.3.7): unspecified, loopback,
/// multicast, broadcast and the reserved class E.
#[inline(always)]
pub fn martian_v4(addr: [u8; 4]) -> bool {
    addr[0] == 0 || addr[0] == 127 || addr[0] >= 224
}

/// An IPv6 source no host answers: multicast, loopback, unspecified
/// (only duplicate address detection may use it, and asks no echo).
#[inline(always)]
pub fn martian_v6(addr: &[u8; 16]) -> bool {
    let loopback_or_unspecified = addr[..15].iter().all(|&b| b == 0) && addr[15] <= 1;
    addr[0] == 0xff || loopback_or_unspecified
}

pub enum Parsed {
    /// Unicast IP: the flow hash.
    Flow(u32),
    /// Multicast destination, by family: the kernel wrote its group MAC.
    Cast(Family),
    /// IPv4 broadcast: the destination MAC must be set to all-ones.
    Broadcast,
    NotIp,
    /// Headers cut short: the packet may need pulling into linear data.
    Truncated,
}

#[derive(Clone, Copy)]
pub enum Family {
    V4,
    V6,
}

/// IPv6 extension headers walked before giving up on finding the ports.
const MAX_IPV6_EXT_HEADERS: usize = 4;

/// Classifies an Ethernet frame and hashes its flow key: addresses,
/// protocol and, for TCP/UDP/SCTP non-fragments, the ports (fragments of
/// one datagram hash on L3 only so they stay together). `broadcasts` are
/// the group's IPv4 subnet broadcast addresses.
#[inline(always)]
pub fn classify(start: usize, end: usize, broadcasts: &[u32; MAX_BROADCASTS]) -> Parsed {
    let frame = Frame::new(start, end);
    let Ok(eth) = frame.header::<EthHdr>(0) else {
        return Parsed::Truncated;
    };
    let cast = mac_is_group(&eth.dst_addr);
    let flow = match eth.ether_type {
        ETHER_IP if cast => return Parsed::Cast(Family::V4),
        ETHER_IPV6 if cast => return Parsed::Cast(Family::V6),
        ETHER_IP => flow_v4(frame, broadcasts),
        ETHER_IPV6 => flow_v6(frame),
        _ => return Parsed::NotIp,
    };
    flow.unwrap_or(Parsed::Truncated)
}

#[inline(always)]
fn flow_v4(frame: Frame, broadcasts: &[u32; MAX_BROADCASTS]) -> Result<Parsed, ()> {
    let ip = frame.header::<Ipv4Hdr>(ETH_HLEN)?;
    let dst = u32::from_ne_bytes(ip.dst_addr);
    if dst == u32::MAX || broadcasts.contains(&dst) {
        return Ok(Parsed::Broadcast);
    }
    let mut h = hash_word(HASH_SEED, u32::from_ne_bytes(ip.src_addr));
    h = hash_word(h, dst);
    h = hash_word(h, ip.proto as u32);
    if u16::from_be_bytes(ip.frags) & IPV4_FRAGMENT_MASK != 0 {
        return Ok(Parsed::Flow(finish(h)));
    }
    hash_ports(
        frame,
        h,
        ip.proto,
        ETH_HLEN + ((ip.vihl & 0x0f) as usize) * 4,
    )
}

#[inline(always)]
fn flow_v6(frame: Frame) -> Result<Parsed, ()> {
    let ip = frame.header::<Ipv6Hdr>(ETH_HLEN)?;
    let mut h = hash_addr6(HASH_SEED, &ip.src_addr);
    h = hash_addr6(h, &ip.dst_addr);
    let mut next = ip.next_hdr;
    let mut off = ETH_HLEN + IPV6_HLEN;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        if !matches!(next, IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS) {
            break;
        }
        let [next_header, length] = frame.read::<[u8; 2]>(off)?;
        next = next_header;
        off += (length as usize + 1) * 8;
    }
    // A fragment header ends the walk: fragments hash on L3.
    h = hash_word(h, next as u32);
    hash_ports(frame, h, next, off)
}

/// Adds the TCP/UDP/SCTP ports at `l4` to the hash, for protocols that have them.
#[inline(always)]
fn hash_ports(frame: Frame, h: u32, proto: u8, l4: usize) -> Result<Parsed, ()> {
    if !matches!(proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP) {
        return Ok(Parsed::Flow(finish(h)));
    }
    let ports = frame.read::<u32>(l4)?;
    Ok(Parsed::Flow(finish(hash_word(h, ports))))
}

const HASH_SEED: u32 = 0x1f3d_5b79;

/// One murmur3 mixing round.
#[inline(always)]
fn hash_word(h: u32, k: u32) -> u32 {
    let k = k
        .wrapping_mul(0xcc9e_2d51)
        .rotate_left(15)
        .wrapping_mul(0x1b87_3593);
    (h ^ k)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

#[inline(always)]
fn hash_addr6(mut h: u32, a: &[u8; 16]) -> u32 {
    for i in 0..4 {
        h = hash_word(
            h,
            u32::from_ne_bytes([a[4 * i], a[4 * i + 1], a[4 * i + 2], a[4 * i + 3]]),
        );
    }
    h
}

/// murmur3's finaliser: spreads the entropy of every input bit into the low
/// bits the flow table index uses.
#[inline(always)]
fn finish(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}
