//! Types shared by the kernel programs (ipmp-ebpf) and ipmpd: the layout of
//! every BPF map of a group lives here once.
//!
//! A group's maps, by the name they are pinned under:
//! - `FLOW_TABLE`   array of 2 [`FlowTable`]s (double buffer)
//! - `ACTIVE_TABLE` array of 1 `u32`: which copy of `FLOW_TABLE` the dataplane reads
//! - `MEMBERS`      array of [`MAX_MEMBERS`] [`Member`]s, indexed by member slot
//! - `GROUP`        array of 1 [`GroupConfig`]
//! - `MEMBER_STATS` per-CPU array of [`MemberCounters`], indexed by slot
//! - `DROPS`        per-CPU array of `u64`, indexed by `DROP_*` reason
#![no_std]

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

pub const PROG_EGRESS: &str = "ipmp_egress";
pub const PROG_MEMBER_XDP: &str = "ipmp_member";
/// The member XDP program's slot: each member runs its own instance with
/// its slot set at load time, so the program needs no lookup to know it.
pub const GLOBAL_MEMBER_SLOT: &str = "MEMBER_SLOT";

/// Reasons the dataplane drops a packet (index into `DROPS`).
pub const DROP_NO_ACTIVE_MEMBER: u32 = 0;
pub const DROP_NOT_IP: u32 = 1;
pub const DROP_MALFORMED: u32 = 2;
pub const DROP_REASONS: u32 = 3;
pub const DROP_REASON_NAMES: [&str; DROP_REASONS as usize] =
    ["no_active_member", "not_ip", "malformed"];

/// Bucket to member slot. Written whole by ipmpd in one map update, into the
/// copy the dataplane is not reading; then `ACTIVE_TABLE` flips.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FlowTable {
    pub slots: [u8; FLOW_TABLE_BUCKETS],
}

impl FlowTable {
    pub const EMPTY: FlowTable = FlowTable {
        slots: [NO_MEMBER; FLOW_TABLE_BUCKETS],
    };
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
    pub _pad2: [u8; 4],
    /// Failures and repairs so far, counted by ipmpd and kept here so the
    /// counters survive its restarts (the dataplane does not read them).
    pub failures: u64,
    pub repairs: u64,
}

/// IPv4 subnet broadcast addresses a group can hold.
pub const MAX_BROADCASTS: usize = 8;

/// Group-wide dataplane settings.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// Cast member slots: broadcast and multicast leave here, per family.
    pub cast_slot_v4: u32,
    pub cast_slot_v6: u32,
    /// The data subnets' broadcast addresses (network order, 0 = unused).
    /// The group interface is NOARP, so the kernel gives a subnet
    /// broadcast its own MAC as destination: only the address tells.
    pub broadcast_v4: [u32; MAX_BROADCASTS],
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            cast_slot_v4: NO_MEMBER as u32,
            cast_slot_v6: NO_MEMBER as u32,
            broadcast_v4: [0; MAX_BROADCASTS],
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
}

impl MemberCounters {
    pub fn add(&mut self, other: &MemberCounters) {
        self.tx_packets += other.tx_packets;
        self.tx_bytes += other.tx_bytes;
        self.rx_packets += other.rx_packets;
        self.rx_bytes += other.rx_bytes;
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are #[repr(C)] with only integer fields and no
    // implicit padding, so every bit pattern is valid.
    unsafe impl aya::Pod for super::FlowTable {}
    unsafe impl aya::Pod for super::Member {}
    unsafe impl aya::Pod for super::GroupConfig {}
    unsafe impl aya::Pod for super::MemberCounters {}
}
