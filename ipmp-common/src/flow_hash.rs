//! The flow hash: which flow table bucket a packet's flow falls in.
//!
//! The egress program computes it for every packet, so it is a handful of
//! 64-bit multiplies (multiplicative, "Fibonacci", hashing) rather than a
//! murmur3 round per 32-bit word (BPF has no rotate instruction; that hash
//! was 9 of the egress program's 47 ns, this one is 1 to 2). The tests below hold it to an even spread over the buckets for the flows a
//! host really has (one peer, many ports; many peers, one port).
//!
//! The flow key is the source and destination address, the protocol and,
//! for TCP/UDP/SCTP non-fragments, the ports (0 otherwise, so fragments of
//! one datagram stay together).

/// Odd constants with well-spread bits (the first is 2^64 / golden ratio).
const K: [u64; 6] = [
    0x9e37_79b9_7f4a_7c15,
    0xc2b2_ae3d_27d4_eb4f,
    0x1656_67b1_9e37_79f9,
    0xd6e8_feb8_6659_fd93,
    0xa076_1d64_78bd_642f,
    0xe703_7ed1_a0b4_28db,
];

/// The hash of an IPv4 flow. Addresses and `ports` (source and destination
/// port as the 4 bytes sit in the packet) are taken as read from the
/// packet, in the machine's byte order.
#[inline(always)]
pub fn flow_hash_v4(src: u32, dst: u32, proto: u8, ports: u32) -> u32 {
    let addresses = ((u64::from(src) << 32) | u64::from(dst)).wrapping_mul(K[0]);
    finish(addresses ^ transport(proto, ports))
}

/// The hash of an IPv6 flow; each address as its two 8-byte halves read
/// from the packet.
#[inline(always)]
pub fn flow_hash_v6(src: [u64; 2], dst: [u64; 2], proto: u8, ports: u32) -> u32 {
    let addresses = src[0].wrapping_mul(K[0])
        ^ src[1].wrapping_mul(K[1])
        ^ dst[0].wrapping_mul(K[2])
        ^ dst[1].wrapping_mul(K[3]);
    finish(addresses ^ transport(proto, ports))
}

#[inline(always)]
fn transport(proto: u8, ports: u32) -> u64 {
    ((u64::from(ports) << 8) | u64::from(proto)).wrapping_mul(K[4])
}

/// Folds the high half into the low one (so every input bit reaches the
/// low bits), multiplies, and keeps the high half of the product: those
/// bits depend on every bit of the folded value. The bucket is the low
/// bits of the result.
#[inline(always)]
fn finish(x: u64) -> u32 {
    ((x ^ (x >> 32)).wrapping_mul(K[5]) >> 32) as u32
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::{vec, vec::Vec};

    use super::*;
    use crate::{
        wire::{IPPROTO_TCP as PROTO_TCP, IPPROTO_UDP as PROTO_UDP},
        FLOW_TABLE_BUCKETS,
    };

    fn ports(src: u16, dst: u16) -> u32 {
        let mut bytes = [0u8; 4];
        bytes[..2].copy_from_slice(&src.to_be_bytes());
        bytes[2..].copy_from_slice(&dst.to_be_bytes());
        u32::from_ne_bytes(bytes)
    }

    fn v4(a: [u8; 4]) -> u32 {
        u32::from_ne_bytes(a)
    }

    fn v6(a: [u16; 8]) -> [u64; 2] {
        let mut bytes = [0u8; 16];
        for (i, w) in a.iter().enumerate() {
            bytes[2 * i..2 * i + 2].copy_from_slice(&w.to_be_bytes());
        }
        [
            u64::from_ne_bytes(bytes[..8].try_into().unwrap()),
            u64::from_ne_bytes(bytes[8..].try_into().unwrap()),
        ]
    }

    /// Fails when the flows' buckets are far from even: the fullest bucket
    /// may hold at most `max_over_mean` times the mean, and the flows must
    /// reach nearly every bucket (a bucket left empty by an even spread is
    /// rare: `exp(-mean)` of them).
    fn assert_even(hashes: impl Iterator<Item = u32>, what: &str) {
        let mut load = vec![0u32; FLOW_TABLE_BUCKETS];
        let mut flows = 0u32;
        for h in hashes {
            load[h as usize & (FLOW_TABLE_BUCKETS - 1)] += 1;
            flows += 1;
        }
        let mean = f64::from(flows) / FLOW_TABLE_BUCKETS as f64;
        let fullest = f64::from(*load.iter().max().unwrap());
        let empty = load.iter().filter(|&&n| n == 0).count() as f64;
        let expected_empty = FLOW_TABLE_BUCKETS as f64 * (-mean).exp();
        assert!(
            fullest <= mean * 2.5,
            "{what}: fullest bucket {fullest} flows, mean {mean}"
        );
        assert!(
            empty <= expected_empty * 1.5 + 8.0,
            "{what}: {empty} empty buckets, an even spread leaves {expected_empty:.0}"
        );
    }

    #[test]
    fn one_peer_many_source_ports_spread_evenly() {
        let (src, dst) = (v4([192, 0, 2, 10]), v4([198, 51, 100, 7]));
        assert_even(
            (0..65535).map(|p| flow_hash_v4(src, dst, PROTO_TCP, ports(p, 443))),
            "IPv4 source ports",
        );
        let (src, dst) = (
            v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 10]),
            v6([0x2001, 0xdb8, 1, 0, 0, 0, 0, 7]),
        );
        assert_even(
            (0..65535).map(|p| flow_hash_v6(src, dst, PROTO_TCP, ports(p, 443))),
            "IPv6 source ports",
        );
    }

    #[test]
    fn many_peers_one_port_spread_evenly() {
        let src = v4([192, 0, 2, 10]);
        assert_even(
            (0..65536u32).map(|i| {
                let dst = v4([198, 51, (i >> 8) as u8, i as u8]);
                flow_hash_v4(src, dst, PROTO_UDP, ports(53, 53))
            }),
            "IPv4 destinations",
        );
        let src = v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 10]);
        assert_even(
            (0..65536u32).map(|i| {
                let dst = v6([0x2001, 0xdb8, 1, 0, 0, 0, (i >> 8) as u16, i as u16 & 0xff]);
                flow_hash_v6(src, dst, PROTO_UDP, ports(53, 53))
            }),
            "IPv6 destinations",
        );
        // Peers that differ only in the high bits of the address.
        assert_even(
            (0..65536u32).map(|i| {
                let dst = v6([0x2001, 0xdb8, i as u16, 0, 0, 0, 0, 1]);
                flow_hash_v6(src, dst, PROTO_UDP, ports(53, 53))
            }),
            "IPv6 prefixes",
        );
    }

    #[test]
    fn every_part_of_the_key_counts() {
        let (src, dst, p) = (
            v4([192, 0, 2, 10]),
            v4([198, 51, 100, 7]),
            ports(40000, 443),
        );
        let base = flow_hash_v4(src, dst, PROTO_TCP, p);
        let changed: Vec<u32> = vec![
            flow_hash_v4(v4([192, 0, 2, 11]), dst, PROTO_TCP, p),
            flow_hash_v4(v4([193, 0, 2, 10]), dst, PROTO_TCP, p),
            flow_hash_v4(src, v4([198, 51, 100, 8]), PROTO_TCP, p),
            flow_hash_v4(src, dst, PROTO_UDP, p),
            flow_hash_v4(src, dst, PROTO_TCP, ports(40001, 443)),
            flow_hash_v4(src, dst, PROTO_TCP, ports(40000, 444)),
        ];
        for (i, h) in changed.iter().enumerate() {
            assert_ne!(
                h & (FLOW_TABLE_BUCKETS as u32 - 1),
                base & (FLOW_TABLE_BUCKETS as u32 - 1),
                "change {i} kept the bucket"
            );
        }
    }
}
