//! The group's maps. Names and layouts are described in ipmp-common; every
//! map is pinned by name so the dataplane outlives ipmpd.
use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, PerCpuArray, RingBuf},
};
use ipmp_common::{
    FlowTable, GroupConfig, Member, MemberCounters, MemberDevice, DROP_REASONS, MAX_DATA_ADDRESSES,
    MAX_MEMBERS, PROBE_REPLIES_BYTES,
};

#[map]
pub static FLOW_TABLE: Array<FlowTable> = Array::pinned(2, 0);
#[map]
pub static ACTIVE_TABLE: Array<u32> = Array::pinned(1, 0);
#[map]
pub static MEMBERS: Array<Member> = Array::pinned(MAX_MEMBERS, 0);
#[map]
pub static GROUP: Array<GroupConfig> = Array::pinned(1, 0);
#[map]
pub static MEMBER_STATS: PerCpuArray<MemberCounters> = PerCpuArray::pinned(MAX_MEMBERS, 0);
#[map]
pub static DROPS: PerCpuArray<u64> = PerCpuArray::pinned(DROP_REASONS, 0);
#[map]
pub static PROBE_REPLIES: RingBuf = RingBuf::pinned(PROBE_REPLIES_BYTES, 0);
#[map]
pub static DATA_ADDRESSES: HashMap<[u8; 16], u32> = HashMap::pinned(MAX_DATA_ADDRESSES, 0);
#[map]
pub static MEMBER_DEVICES: Array<MemberDevice> = Array::pinned(MAX_MEMBERS, 0);

/// The slot of the member data address `key` is bound to (`NO_MEMBER`
/// while unbound); `None` when `key` is not a data address of the group.
#[inline(always)]
pub fn data_address(key: &[u8; 16]) -> Option<u32> {
    // SAFETY: the value is copied out at once; ipmpd replaces entries whole.
    unsafe { DATA_ADDRESSES.get(key) }.copied()
}

#[inline(always)]
pub fn count_drop(reason: u32) {
    if let Some(c) = DROPS.get_ptr_mut(reason) {
        // SAFETY: per-CPU slot, no concurrent writer.
        unsafe { *c += 1 };
    }
}

#[inline(always)]
pub fn member_stats(slot: u32) -> Option<&'static mut MemberCounters> {
    // SAFETY: per-CPU slot, no concurrent writer.
    MEMBER_STATS.get_ptr_mut(slot).map(|p| unsafe { &mut *p })
}
