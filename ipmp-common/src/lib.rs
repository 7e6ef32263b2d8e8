//! Types shared by the kernel programs (ipmp-ebpf) and ipmpd: the layout of
//! every BPF map of a group lives here once, and every protocol number and
//! address both sides use in [`wire`].
//!
//! A group's maps, by the name they are pinned under:
//! - `FLOW_TABLE`   array of 2 [`FlowTable`]s (double buffer)
//! - `ACTIVE_TABLE` array of 1 `u32`: which copy of `FLOW_TABLE` the dataplane reads
//! - `MEMBERS`      array of [`MAX_MEMBERS`] [`Member`]s, indexed by member slot
//! - `GROUP`        array of 1 [`GroupConfig`]
//! - `MEMBER_STATS` per-CPU array of [`MemberCounters`], indexed by slot
//! - `DROPS`        per-CPU array of `u64`, indexed by `DROP_*` reason
//! - `PROBE_REPLIES` ring buffer of [`ProbeReply`], our probes' replies timed by XDP
//! - `DATA_ADDRESSES` hash of data address ([`data_address_key_v4`] for IPv4) to the
//!   slot of the member it is bound to for inbound traffic
//! - `MEMBER_DEVICES` array of [`MAX_MEMBERS`] [`MemberDevice`]s: where the kernel
//!   reads each member's link state, and why it took the member out of the egress
//!   path (`TAKEN_OUT_*`), until ipmpd puts it back
#![no_std]

pub mod flow_hash;
pub mod wire;

/// Buckets in a flow table; a power of two so the dataplane masks the hash.
pub const FLOW_TABLE_BUCKETS: usize = 4096;
/// Member slots of a group (slot numbers fit the `u8` buckets).
pub const MAX_MEMBERS: u32 = 64;
/// A bucket or cast slot that names no member: traffic there is dropped.
pub const NO_MEMBER: u8 = 0xff;

pub const MAP_FLOW_TABLE: &str = "FLOW_TABLE";
pub const MAP_ACTIVE_TABLE: &str = "ACTIVE_TABLE";
pub const MAP_MEMBERS: &str = "MEMBERS";
pub const MAP_GROUP: &str = "GROUP";
pub const MAP_MEMBER_STATS: &str = "MEMBER_STATS";
pub const MAP_DROPS: &str = "DROPS";
pub const MAP_PROBE_REPLIES: &str = "PROBE_REPLIES";
pub const MAP_DATA_ADDRESSES: &str = "DATA_ADDRESSES";
pub const MAP_MEMBER_DEVICES: &str = "MEMBER_DEVICES";
/// Data addresses of a group (both families).
pub const MAX_DATA_ADDRESSES: u32 = 64;
/// Bytes of the probe reply ring buffer (a power of two, page multiple).
pub const PROBE_REPLIES_BYTES: u32 = 64 * 1024;

pub const PROG_EGRESS: &str = "ipmp_egress";
pub const PROG_MEMBER_XDP: &str = "ipmp_member";
/// TC egress on every member: the kernel's ARP requests from a data
/// address leave as ARP probes (sender 0.0.0.0).
pub const PROG_MEMBER_EGRESS: &str = "ipmp_member_egress";
/// The member XDP program's slot: each member runs its own instance with
/// its slot set at load time, so the program needs no lookup to know it.
pub const GLOBAL_MEMBER_SLOT: &str = "MEMBER_SLOT";
/// An XDP program that is never attached: ipmpd runs it once per member
/// (BPF_PROG_TEST_RUN with the member as ingress interface) so that it
/// records the member's `net_device` in `MEMBER_DEVICES`.
pub const PROG_LOCATE_MEMBER: &str = "ipmp_locate_member";

/// Where the running kernel keeps what the dataplane reads of a member's
/// device, taken from its BTF at load time (layouts change between
/// kernels; aya here has no CO-RE for Rust programs). Globals of the
/// programs, by name.
pub const GLOBAL_NET_DEVICE_STATE: &str = "NET_DEVICE_STATE";
pub const GLOBAL_NET_DEVICE_IFINDEX: &str = "NET_DEVICE_IFINDEX";
pub const GLOBAL_XDP_BUFF_RXQ: &str = "XDP_BUFF_RXQ";
pub const GLOBAL_XDP_RXQ_INFO_DEV: &str = "XDP_RXQ_INFO_DEV";
/// Bits of `net_device.state`: `__LINK_STATE_START` (the device is open,
/// admin up) and `__LINK_STATE_NOCARRIER` (set by `netif_carrier_off()`
/// at once, before any netlink message).
pub const GLOBAL_LINK_STATE_START: &str = "LINK_STATE_START";
pub const GLOBAL_LINK_STATE_NOCARRIER: &str = "LINK_STATE_NOCARRIER";
/// The BTF type id of `struct net_device` in the running kernel.
pub const GLOBAL_NET_DEVICE_TYPE: &str = "NET_DEVICE_TYPE";
/// 1: the egress program reads a member's device with plain loads (the
/// kernel has `bpf_rdonly_cast`, 6.2 and later); 0: with
/// `bpf_probe_read_kernel` calls.
pub const GLOBAL_LINK_CHECK_BY_LOADS: &str = "LINK_CHECK_BY_LOADS";

/// The egress program calls the kernel function `bpf_rdonly_cast`, which
/// turns a member's device address into a pointer the verifier lets it
/// read with plain loads (the verifier inlines the call; a helper read
/// would cost a call per packet). aya 0.14 cannot link calls to kernel
/// functions, so the program carries this raw instruction (`call` with
/// source register 2, "kernel function", and this placeholder as the
/// function's BTF id), and ipmpd writes the running kernel's id of
/// `bpf_rdonly_cast` over the placeholder before loading. A kernel without
/// it gets [`KFUNC_ABSENT`] there instead, and `GLOBAL_LINK_CHECK_BY_LOADS`
/// 0, so the verifier never walks that branch.
pub const KFUNC_RDONLY_CAST_PLACEHOLDER: [u8; 8] = [0x85, 0x20, 0, 0, 0xf0, 0xff, 0xff, 0x7f];
/// `r0 = r1`: what the call becomes where the kernel has no such function
/// (a valid instruction in a branch never taken).
pub const KFUNC_ABSENT: [u8; 8] = [0xbf, 0x10, 0, 0, 0, 0, 0, 0];

/// Why the kernel took a member out of the egress path (`TAKEN_OUT` bits).
pub const TAKEN_OUT_NO_CARRIER: u32 = 1;
pub const TAKEN_OUT_ADMIN_DOWN: u32 = 2;
/// The member's device is gone (its memory no longer holds its ifindex).
pub const TAKEN_OUT_GONE: u32 = 4;

/// Reasons the dataplane drops a packet (index into `DROPS`).
pub const DROP_NO_ACTIVE_MEMBER: u32 = 0;
pub const DROP_NOT_IP: u32 = 1;
pub const DROP_MALFORMED: u32 = 2;
pub const DROP_REASONS: u32 = 3;
pub const DROP_REASON_NAMES: [&str; DROP_REASONS as usize] =
    ["no_active_member", "not_ip", "malformed"];

/// Bucket to member slot. Written whole by ipmpd in one map update, into the
/// copy the dataplane is not reading; then `ACTIVE_TABLE` flips.
///
/// The kernel takes a member whose link it finds down out by itself: a
/// bucket whose owner is down goes to its backup, which is where ipmpd's
/// next table will put it, so no flow moves twice; when the backup is
/// down too, to the first active member in service, starting at the hash.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FlowTable {
    pub slots: [u8; FLOW_TABLE_BUCKETS],
    /// Per bucket, the member its owner's failure moves it to.
    pub backups: [u8; FLOW_TABLE_BUCKETS],
    /// The active members' slots, the first `active_count` of them.
    pub active: [u8; MAX_MEMBERS as usize],
    pub active_count: u32,
    pub _pad: u32,
}

impl FlowTable {
    pub const EMPTY: FlowTable = FlowTable {
        slots: [NO_MEMBER; FLOW_TABLE_BUCKETS],
        backups: [NO_MEMBER; FLOW_TABLE_BUCKETS],
        active: [NO_MEMBER; MAX_MEMBERS as usize],
        active_count: 0,
        _pad: 0,
    };
}

/// Where the kernel finds a member's device: its `struct net_device`
/// address, recorded by `PROG_LOCATE_MEMBER`, and the ifindex it had then
/// (read back on every check, so a freed and reused device never passes);
/// and whether the kernel took the member out of the egress path. One
/// record, so the egress program's check costs one lookup.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberDevice {
    pub net_device: u64,
    pub ifindex: u32,
    /// Why the kernel found the link down (`TAKEN_OUT_*`), 0 while it has
    /// not; it stays until ipmpd puts the member back.
    pub taken_out: u32,
}

/// What the dataplane needs to send through a member.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Member {
    pub ifindex: u32,
    pub mac: [u8; 6],
    /// Padding made explicit so the layout is the same on both sides.
    pub _pad: [u8; 2],
    /// Interface name, NUL padded: lets a restarted ipmpd adopt the slot.
    pub name: [u8; 16],
    /// The IPv4 test address (network order), 0 when there is none.
    pub test_v4: u32,
    /// Failures and repairs so far, counted by ipmpd and kept here so the
    /// counters survive its restarts (the dataplane does not read them).
    pub failures: u64,
    pub repairs: u64,
    /// The IPv6 link-local address (the IPv6 test address), zero when none.
    pub test_v6: [u8; 16],
    /// Probes counted by ipmpd, kept here like `failures`.
    pub probes: ProbeCounts,
    /// ipmpd's decisions about the member (`RECORD_*` bits), so that a
    /// restarted ipmpd starts from them (the dataplane does not read them).
    pub record: u32,
    /// The member's sysctls before ipmpd first changed them, restored at
    /// teardown (valid with [`RECORD_SYSCTLS_SAVED`]), by `SAVED_*` index.
    pub saved_sysctls: [u8; SAVED_SYSCTLS],
    /// The IPv4 test address's prefix length (with `test_v4`), so that the
    /// address can be removed from the pins alone.
    pub test_v4_prefix: u8,
    pub _pad2: [u8; 5],
}

/// `Member::record`: taken offline by the operator (if_mpadm -d).
pub const RECORD_OFFLINE: u32 = 1 << 0;
/// Failed by its probes (the probe verdict); repaired only by acknowledged
/// probes.
pub const RECORD_PROBE_FAILED: u32 = 1 << 1;
/// The link was last seen up / down (neither: not seen).
pub const RECORD_LINK_UP: u32 = 1 << 2;
pub const RECORD_LINK_DOWN: u32 = 1 << 3;
/// In the active set (carries traffic).
pub const RECORD_ACTIVE: u32 = 1 << 4;
/// Usable but held back by `failback = false` (flag `i` on a non-standby).
pub const RECORD_HELD_BACK: u32 = 1 << 5;
/// Failed, for any reason (link, removal, probes).
pub const RECORD_FAILED: u32 = 1 << 6;
/// `saved_sysctls` holds the originals.
pub const RECORD_SYSCTLS_SAVED: u32 = 1 << 7;
/// "All IP interfaces in group ... are now unusable" was said about the
/// member's group and no member has been usable since.
pub const RECORD_GROUP_FAILURE_ANNOUNCED: u32 = 1 << 8;

/// Indices into `Member::saved_sysctls`: net.ipv4.conf.all.rp_filter (as
/// it was when this member was prepared), then the member's own rp_filter,
/// arp_ignore, arp_announce, and IPv6 autoconf and accept_ra_defrtr.
pub const SAVED_ALL_RP_FILTER: usize = 0;
pub const SAVED_RP_FILTER: usize = 1;
pub const SAVED_ARP_IGNORE: usize = 2;
pub const SAVED_ARP_ANNOUNCE: usize = 3;
pub const SAVED_AUTOCONF: usize = 4;
pub const SAVED_ACCEPT_RA_DEFRTR: usize = 5;
pub const SAVED_SYSCTLS: usize = 6;

/// A member's failure-detection probes as ipmpd counts them: sent, and of
/// those acknowledged (by the prober's rules) or lost.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeCounts {
    pub sent: u64,
    pub acked: u64,
    pub lost: u64,
}

/// IPv4 subnet broadcast addresses a group's dataplane holds.
pub const MAX_BROADCASTS: usize = 8;
/// On-link subnets a group's dataplane holds, per family.
pub const MAX_ONLINK: usize = 8;

/// A subnet whose destinations the group reaches directly (no gateway):
/// address and mask as they sit in the packet (network order), each as
/// two 8-byte halves (an IPv4 subnet uses the first 4 bytes). A zero
/// mask ends the list.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OnLink {
    pub network: [u64; 2],
    pub mask: [u64; 2],
}

impl OnLink {
    /// The subnet of `address` / `prefix_len` (`address` is 4 or 16 bytes).
    pub fn new(address: &[u8], prefix_len: u8) -> OnLink {
        let mut mask = [0u8; 16];
        for (i, byte) in mask.iter_mut().enumerate().take(address.len()) {
            let bits = (usize::from(prefix_len)).saturating_sub(8 * i).min(8);
            *byte = (0xff00u16 >> bits) as u8;
        }
        let mask = address_words(&mask);
        let address = address_words(address);
        OnLink {
            network: [address[0] & mask[0], address[1] & mask[1]],
            mask,
        }
    }

    /// Whether the address `words` (from [`address_words`]) is inside.
    #[inline(always)]
    pub fn contains(&self, words: [u64; 2]) -> bool {
        words[0] & self.mask[0] == self.network[0] && words[1] & self.mask[1] == self.network[1]
    }
}

/// An address (4 or 16 bytes, as in the packet) as the two 8-byte halves
/// [`OnLink`] compares, zero-padded.
#[inline(always)]
pub fn address_words(address: &[u8]) -> [u64; 2] {
    let mut bytes = [0u8; 16];
    let n = if address.len() < 16 {
        address.len()
    } else {
        16
    };
    bytes[..n].copy_from_slice(&address[..n]);
    let mut halves = [[0u8; 8]; 2];
    halves[0].copy_from_slice(&bytes[..8]);
    halves[1].copy_from_slice(&bytes[8..]);
    [u64::from_ne_bytes(halves[0]), u64::from_ne_bytes(halves[1])]
}

/// Whether `words` lies in one of the subnets of `list` (the first zero
/// mask ends it).
#[inline(always)]
pub fn onlink(list: &[OnLink; MAX_ONLINK], words: [u64; 2]) -> bool {
    for subnet in list {
        if subnet.mask == [0, 0] {
            return false;
        }
        if subnet.contains(words) {
            return true;
        }
    }
    false
}

/// Group-wide dataplane settings.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// Cast member slots: broadcast and multicast leave here, per family.
    pub cast_slot_v4: u32,
    pub cast_slot_v6: u32,
    /// The data subnets' broadcast addresses (network order, 0 = unused).
    /// The group interface is NOARP, so the kernel gives a subnet
    /// broadcast its own MAC as destination: only the address tells. Only
    /// subnets of prefixes up to /30 have one (RFC 3021), so every entry
    /// has its two lowest bits set, which the egress program relies on.
    pub broadcast_v4: [u32; MAX_BROADCASTS],
    /// ipmpd's secret probe key, random at each start: a reply counts only
    /// when it carries the [`probe_token`] of its probe under this key.
    pub probe_key: [u64; 2],
    /// 1: answer ICMP and ICMPv6 echo requests in XDP (`answer_echo`), 0:
    /// leave them to the kernel.
    pub answer_echo: u32,
    pub _pad: u32,
    /// The data subnets, per family, without those that a more specific
    /// route through the group interface covers in part: a unicast
    /// destination inside one is its own next hop, which the egress
    /// program hands to the kernel so that it looks up no route per packet.
    pub onlink_v4: [OnLink; MAX_ONLINK],
    pub onlink_v6: [OnLink; MAX_ONLINK],
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            cast_slot_v4: NO_MEMBER as u32,
            cast_slot_v6: NO_MEMBER as u32,
            broadcast_v4: [0; MAX_BROADCASTS],
            probe_key: [0; 2],
            answer_echo: 0,
            _pad: 0,
            onlink_v4: [OnLink::default(); MAX_ONLINK],
            onlink_v6: [OnLink::default(); MAX_ONLINK],
        }
    }
}

/// Per member, per CPU counters; summed by ipmpd when read.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberCounters {
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Echo replies to a test address that were not ours (identifier,
    /// token or length wrong): passed to the kernel.
    pub probe_replies_rejected: u64,
    /// Echo requests to a data or test address answered in XDP.
    pub echo_answered: u64,
    /// ARP requests and neighbour solicitations for a data address
    /// answered in XDP (on its bound member).
    pub neighbour_answered: u64,
    /// Broadcast and multicast data dropped because another member is the
    /// cast member (so applications see each datagram once).
    pub cast_dropped: u64,
    /// Round-trip times of our probes' replies, which XDP timed and handed
    /// to ipmpd: counts per bucket of [`RTT_BUCKET_BOUNDS_NS`]
    /// (not cumulative; the last bucket is everything above), and their sum.
    pub rtt_buckets: [u64; RTT_BUCKETS],
    pub rtt_sum_ns: u64,
}

/// Upper bounds of the probe RTT histogram's buckets, in ns.
pub const RTT_BUCKET_BOUNDS_NS: [u64; 12] = [
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
];
/// The bounded buckets plus the one above the last bound.
pub const RTT_BUCKETS: usize = RTT_BUCKET_BOUNDS_NS.len() + 1;

impl MemberCounters {
    pub fn add(&mut self, other: &MemberCounters) {
        self.tx_packets += other.tx_packets;
        self.tx_bytes += other.tx_bytes;
        self.rx_packets += other.rx_packets;
        self.rx_bytes += other.rx_bytes;
        self.probe_replies_rejected += other.probe_replies_rejected;
        self.echo_answered += other.echo_answered;
        self.neighbour_answered += other.neighbour_answered;
        self.cast_dropped += other.cast_dropped;
        for (b, o) in self.rtt_buckets.iter_mut().zip(other.rtt_buckets) {
            *b += o;
        }
        self.rtt_sum_ns += other.rtt_sum_ns;
    }
}

/// The key of a data address in `DATA_ADDRESSES`: IPv6 as is, IPv4 as an
/// IPv4-mapped IPv6 address (::ffff:a.b.c.d), so one map holds both.
pub const fn data_address_key_v4(v4: [u8; 4]) -> [u8; 16] {
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, v4[0], v4[1], v4[2], v4[3],
    ]
}

/// The key of any data address in `DATA_ADDRESSES`.
pub const fn data_address_key(addr: core::net::IpAddr) -> [u8; 16] {
    match addr {
        core::net::IpAddr::V4(v4) => data_address_key_v4(v4.octets()),
        core::net::IpAddr::V6(v6) => v6.octets(),
    }
}

/// The ICMP echo identifier of a member's probes.
pub const fn probe_identifier(slot: u8) -> u16 {
    0x4900 | slot as u16
}

/// The payload of a probe (ICMP echo data), written by ipmpd in host byte
/// order and read back by XDP on the same host.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbePayload {
    /// CLOCK_MONOTONIC at sending, in ns: the clock of bpf_ktime_get_ns.
    pub sent_ns: u64,
    /// [`probe_token`] of this probe: only a host that saw the probe can
    /// send it back, so a reply to a probe never seen is not taken.
    pub token: u64,
    /// The probe kind's code (failure detection, target discovery, RTT only).
    pub kind: u32,
    pub _pad: u32,
}

/// The token of one probe: SipHash-2-4 under ipmpd's secret `key` of the
/// echo identifier (the member), sequence number, kind and send time.
/// Computed by ipmpd for the payload and again by XDP for the reply.
#[inline(always)]
pub fn probe_token(key: &[u64; 2], identifier: u16, seq: u16, kind: u32, sent_ns: u64) -> u64 {
    let words = [
        sent_ns,
        (u64::from(identifier) << 48) | (u64::from(seq) << 32) | u64::from(kind),
    ];
    siphash24(key, &words)
}

/// SipHash-2-4 (Aumasson and Bernstein) of whole 64-bit words: 16 bytes of
/// message, so the final block holds the length byte alone.
#[inline(always)]
fn siphash24(key: &[u64; 2], words: &[u64; 2]) -> u64 {
    let mut v = [
        key[0] ^ 0x736f_6d65_7073_6575,
        key[1] ^ 0x646f_7261_6e64_6f6d,
        key[0] ^ 0x6c79_6765_6e65_7261,
        key[1] ^ 0x7465_6462_7974_6573,
    ];
    let len_block = ((words.len() as u64 * 8) & 0xff) << 56;
    let mut i = 0;
    while i < 3 {
        let m = if i < 2 { words[i] } else { len_block };
        v[3] ^= m;
        sip_round(&mut v);
        sip_round(&mut v);
        v[0] ^= m;
        i += 1;
    }
    v[2] ^= 0xff;
    sip_round(&mut v);
    sip_round(&mut v);
    sip_round(&mut v);
    sip_round(&mut v);
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[inline(always)]
fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

/// A probe reply as XDP hands it to ipmpd (ring buffer record).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeReply {
    /// Reply arrival minus the probe's send time, measured in the kernel.
    pub rtt_ns: u64,
    /// The probe's send time (CLOCK_MONOTONIC ns), from its payload.
    pub sent_ns: u64,
    /// The replying target: an IPv4 address in the first 4 bytes, or IPv6.
    pub from: [u8; 16],
    pub slot: u32,
    pub seq: u16,
    /// 4 or 6.
    pub family: u8,
    pub kind: u8,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are #[repr(C)] with only integer fields and no
    // implicit padding, so every bit pattern is valid.
    unsafe impl aya::Pod for super::FlowTable {}
    unsafe impl aya::Pod for super::Member {}
    unsafe impl aya::Pod for super::GroupConfig {}
    unsafe impl aya::Pod for super::MemberCounters {}
    unsafe impl aya::Pod for super::ProbeReply {}
    unsafe impl aya::Pod for super::MemberDevice {}
}

#[cfg(test)]
mod tests {
    use super::{address_words, onlink, OnLink, MAX_ONLINK};

    #[test]
    fn onlink_subnets_hold_their_addresses_only() {
        let mut list = [OnLink::default(); MAX_ONLINK];
        list[0] = OnLink::new(&[192, 0, 2, 77], 24);
        list[1] = OnLink::new(
            &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            64,
        );
        assert!(onlink(&list, address_words(&[192, 0, 2, 10])));
        assert!(!onlink(&list, address_words(&[192, 0, 3, 10])));
        let mut inside = [0u8; 16];
        inside[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        inside[15] = 9;
        assert!(onlink(&list, address_words(&inside)));
        inside[7] = 1;
        assert!(!onlink(&list, address_words(&inside)));
        // A /25: the upper half is outside.
        let half = [OnLink::new(&[198, 51, 100, 0], 25); MAX_ONLINK];
        assert!(onlink(&half, address_words(&[198, 51, 100, 127])));
        assert!(!onlink(&half, address_words(&[198, 51, 100, 128])));
        // An empty list holds nothing, not everything.
        assert!(!onlink(
            &[OnLink::default(); MAX_ONLINK],
            address_words(&[0, 0, 0, 0])
        ));
    }

    use super::*;

    /// The reference implementation's vector for key 00 01 .. 0f and the
    /// 16-byte message 00 01 .. 0f.
    #[test]
    fn siphash24_matches_the_reference_vectors() {
        let key = [
            u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]),
            u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]),
        ];
        let words = [
            u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]),
            u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]),
        ];
        assert_eq!(siphash24(&key, &words), 0x3f2a_cc7f_57c2_9bdb);
    }

    #[test]
    fn tokens_differ_by_every_input_and_key() {
        let key = [1, 2];
        let base = probe_token(&key, 0x4900, 7, 1, 1_000);
        assert_ne!(base, probe_token(&key, 0x4901, 7, 1, 1_000));
        assert_ne!(base, probe_token(&key, 0x4900, 8, 1, 1_000));
        assert_ne!(base, probe_token(&key, 0x4900, 7, 2, 1_000));
        assert_ne!(base, probe_token(&key, 0x4900, 7, 1, 1_001));
        assert_ne!(base, probe_token(&[1, 3], 0x4900, 7, 1, 1_000));
    }
}
