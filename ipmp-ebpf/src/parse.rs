//! Bounds-checked packet parsing shared by the programs. Every read is
//! checked against the end of the packet, here and nowhere else; what
//! cannot be parsed is `Err(())` (the frame is not ours: it goes on to
//! the kernel), never guessed.
//!
//! The member program parses the Ethernet and IP headers once and hands
//! them to echo, neighbour and probe.
use core::{marker::PhantomData, mem::size_of};

use ipmp_common::wire::{ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ETH_P_QINQ1};
use network_types::{
    eth::EthHdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
};

/// A pointer to a `T` at `offset`, if the packet holds all of it.
#[inline(always)]
fn ptr_at<T>(start: usize, end: usize, offset: usize) -> Option<*const T> {
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
