//! Bounds-checked packet parsing shared by the programs. Every read is
//! checked against the end of the packet; what cannot be parsed is reported,
//! never guessed.
use core::mem::size_of;

use network_types::eth::EthHdr;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_ICMPV6: u8 = 58;

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
