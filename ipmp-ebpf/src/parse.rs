//! Bounds-checked packet parsing shared by the programs. Every read is
//! checked against the end of the packet; what cannot be parsed is reported,
//! never guessed.
use core::mem::size_of;

use ipmp_common::MAX_BROADCASTS;
use network_types::{
    eth::{EthHdr, EtherType},
    ip::{Ipv4Hdr, Ipv6Hdr},
};

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_ICMPV6: u8 = 58;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_SCTP: u8 = 132;
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_DEST_OPTS: u8 = 60;

/// 802.1Q, 802.1ad and the older QinQ tags: frames of another VLAN, not
/// ours to answer.
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

/// Whether a frame carries a VLAN tag (its outer EtherType says so).
#[inline(always)]
pub fn vlan_tagged(eth: &EthHdr) -> bool {
    matches!(
        u16::from_be(eth.ether_type),
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
    )
}

/// A group address (multicast or broadcast): never the source of a frame.
#[inline(always)]
pub fn mac_is_group(mac: &[u8; 6]) -> bool {
    mac[0] & 1 != 0
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

/// Words summed at most by [`sum`]: an echo message of up to 1500 bytes
/// (a standard MTU); longer ones are left to the kernel.
pub const MAX_SUM_WORDS: usize = 375;

/// The one's-complement sum (unfolded) of the `len` bytes at `offset`, as
/// big-endian 16-bit words; `None` when the packet does not hold them or
/// they are more than [`MAX_SUM_WORDS`] 4-byte words.
#[inline(always)]
pub fn sum(start: usize, end: usize, offset: usize, len: usize) -> Option<u64> {
    // Each read checks the packet bounds itself: a check of the whole
    // length here would let the compiler drop those, and the verifier
    // needs them.
    if len > MAX_SUM_WORDS * 4 {
        return None;
    }
    let mut total: u64 = 0;
    let mut done = 0;
    for _ in 0..MAX_SUM_WORDS {
        if done + 4 > len {
            break;
        }
        let w = ptr_at::<[u8; 4]>(start, end, offset + done)?;
        // SAFETY: bounds checked by ptr_at.
        let w = unsafe { *w };
        total += u64::from(u16::from_be_bytes([w[0], w[1]]))
            + u64::from(u16::from_be_bytes([w[2], w[3]]));
        done += 4;
    }
    if done + 2 <= len {
        let w = ptr_at::<[u8; 2]>(start, end, offset + done)?;
        // SAFETY: bounds checked by ptr_at.
        total += u64::from(u16::from_be_bytes(unsafe { *w }));
        done += 2;
    }
    if done < len {
        let b = ptr_at::<u8>(start, end, offset + done)?;
        // SAFETY: bounds checked by ptr_at; an odd last byte is padded with zero.
        total += u64::from(unsafe { *b }) << 8;
    }
    Some(total)
}

/// Folds a one's-complement sum into 16 bits.
#[inline(always)]
pub fn fold64(mut total: u64) -> u16 {
    total = (total & 0xffff_ffff) + (total >> 32);
    total = (total & 0xffff) + (total >> 16);
    total = (total & 0xffff) + (total >> 16);
    total = (total & 0xffff) + (total >> 16);
    total as u16
}

/// A pointer to a `T` at `offset`, if the packet holds all of it.
#[inline(always)]
pub fn ptr_at<T>(start: usize, end: usize, offset: usize) -> Option<*const T> {
    if start + offset + size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *const T)
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
    let Some(eth) = ptr_at::<EthHdr>(start, end, 0) else {
        return Parsed::Truncated;
    };
    // SAFETY: bounds checked by ptr_at.
    let eth = unsafe { &*eth };
    let cast = eth.dst_addr[0] & 1 != 0;
    match eth.ether_type() {
        Ok(EtherType::Ipv4) => {
            if cast {
                return Parsed::Cast(Family::V4);
            }
            let Some(ip) = ptr_at::<Ipv4Hdr>(start, end, EthHdr::LEN) else {
                return Parsed::Truncated;
            };
            // SAFETY: bounds checked by ptr_at.
            let ip = unsafe { &*ip };
            let dst = u32::from_ne_bytes(ip.dst_addr);
            if dst == u32::MAX || broadcasts.contains(&dst) {
                return Parsed::Broadcast;
            }
            let mut h = hash_word(HASH_SEED, u32::from_ne_bytes(ip.src_addr));
            h = hash_word(h, u32::from_ne_bytes(ip.dst_addr));
            h = hash_word(h, ip.proto as u32);
            let fragment = u16::from_be_bytes(ip.frags) & 0x3fff != 0;
            if fragment {
                return Parsed::Flow(finish(h));
            }
            hash_ports(
                h,
                ip.proto,
                start,
                end,
                EthHdr::LEN + ((ip.vihl & 0x0f) as usize) * 4,
            )
        }
        Ok(EtherType::Ipv6) => {
            if cast {
                return Parsed::Cast(Family::V6);
            }
            let Some(ip) = ptr_at::<Ipv6Hdr>(start, end, EthHdr::LEN) else {
                return Parsed::Truncated;
            };
            // SAFETY: bounds checked by ptr_at.
            let ip = unsafe { &*ip };
            let mut h = HASH_SEED;
            h = hash_addr6(h, &ip.src_addr);
            h = hash_addr6(h, &ip.dst_addr);
            let mut next = ip.next_hdr;
            let mut off = EthHdr::LEN + Ipv6Hdr::LEN;
            for _ in 0..MAX_IPV6_EXT_HEADERS {
                match next {
                    IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS => {
                        let Some(ext) = ptr_at::<[u8; 2]>(start, end, off) else {
                            return Parsed::Truncated;
                        };
                        // SAFETY: bounds checked by ptr_at.
                        let ext = unsafe { *ext };
                        next = ext[0];
                        off += (ext[1] as usize + 1) * 8;
                    }
                    _ => break,
                }
            }
            // A fragment header (44) ends the walk: fragments hash on L3.
            h = hash_word(h, next as u32);
            hash_ports(h, next, start, end, off)
        }
        _ => Parsed::NotIp,
    }
}

/// Adds the TCP/UDP/SCTP ports at `l4` to the hash, for protocols that have them.
#[inline(always)]
fn hash_ports(h: u32, proto: u8, start: usize, end: usize, l4: usize) -> Parsed {
    if !matches!(proto, PROTO_TCP | PROTO_UDP | PROTO_SCTP) {
        return Parsed::Flow(finish(h));
    }
    match ptr_at::<u32>(start, end, l4) {
        // SAFETY: bounds checked by ptr_at; may be unaligned.
        Some(p) => Parsed::Flow(finish(hash_word(h, unsafe { p.read_unaligned() }))),
        None => Parsed::Truncated,
    }
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
