//! The kernel's own view of a member's health: before a packet is sent
//! through a member, its device's link state is read straight from its
//! `struct net_device`, where `netif_carrier_off()` and `dev_close()`
//! change it at once, long before netlink tells ipmpd. A member found down
//! is marked (`MemberDevice::taken_out`) and stays out until ipmpd puts it back: the
//! kernel only takes members out, the policy decides when they return.
use aya_ebpf::{
    bindings::xdp_action, helpers::bpf_probe_read_kernel, macros::xdp, programs::XdpContext, Global,
};
use ipmp_common::{
    FlowTable, MemberDevice, KFUNC_RDONLY_CAST_PLACEHOLDER, MAX_MEMBERS, NO_MEMBER,
    TAKEN_OUT_ADMIN_DOWN, TAKEN_OUT_GONE, TAKEN_OUT_NO_CARRIER,
};

use crate::{maps::MEMBER_DEVICES, parse::Frame};

// Layout of the running kernel, from its BTF, set by ipmpd at load time.
#[unsafe(no_mangle)]
static NET_DEVICE_STATE: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static NET_DEVICE_IFINDEX: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static NET_DEVICE_TYPE: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static LINK_CHECK_BY_LOADS: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static XDP_BUFF_RXQ: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static XDP_RXQ_INFO_DEV: Global<u32> = Global::new(0);
/// Bit numbers in `net_device.state`.
#[unsafe(no_mangle)]
static LINK_STATE_START: Global<u32> = Global::new(0);
#[unsafe(no_mangle)]
static LINK_STATE_NOCARRIER: Global<u32> = Global::new(2);

/// Whether traffic may leave through the member in `slot`: it is a member,
/// the kernel has not taken it out, and its link is up now.
#[inline(always)]
pub fn in_service(slot: u8) -> bool {
    if slot == NO_MEMBER {
        return false;
    }
    let Some(device) = MEMBER_DEVICES.get_ptr_mut(u32::from(slot)) else {
        return false;
    };
    // SAFETY: a valid map value; racing writers store whole fields.
    let device = unsafe { &mut *device };
    if device.taken_out != 0 {
        return false;
    }
    // Never located (or not yet): the flow table is all there is to go by.
    if device.net_device == 0 {
        return true;
    }
    match link_down(device) {
        0 => true,
        why => {
            device.taken_out = why;
            false
        }
    }
}

/// Why the member's link is down (`TAKEN_OUT_*`), or 0 while it is up.
#[inline(always)]
fn link_down(device: &MemberDevice) -> u32 {
    let (state, ifindex) = read_device(device.net_device as usize);
    let (start, no_carrier) = (
        1 << LINK_STATE_START.load(),
        1 << LINK_STATE_NOCARRIER.load(),
    );
    // Up: one test on the path every packet takes.
    if ifindex == device.ifindex && state & (start | no_carrier) == start {
        return 0;
    }
    // A device freed since it was located reads as anything: gone first.
    // Closing a device drops its carrier too (veth does): down says more.
    if ifindex != device.ifindex {
        TAKEN_OUT_GONE
    } else if state & start == 0 {
        TAKEN_OUT_ADMIN_DOWN
    } else {
        TAKEN_OUT_NO_CARRIER
    }
}

/// The device's `state` and `ifindex`, read with plain loads through the
/// pointer `bpf_rdonly_cast` makes of its address: the verifier inlines
/// the call and makes the loads fault-safe (a load that faults reads 0),
/// so they cost what loads cost, where a `bpf_probe_read_kernel` call per
/// packet cost 7 ns. Kernels before 6.2 have no `bpf_rdonly_cast`: there
/// the helper reads them (a failed read gives 0 too).
#[inline(always)]
fn read_device(base: usize) -> (u64, u32) {
    let state_at = NET_DEVICE_STATE.load() as usize;
    let ifindex_at = NET_DEVICE_IFINDEX.load() as usize;
    // A constant to the verifier, which walks only the branch taken.
    if LINK_CHECK_BY_LOADS.load() == 0 {
        // SAFETY: bpf_probe_read_kernel copes with any address.
        return unsafe {
            (
                bpf_probe_read_kernel((base + state_at) as *const u64).unwrap_or(0),
                bpf_probe_read_kernel((base + ifindex_at) as *const u32).unwrap_or(0),
            )
        };
    }
    // SAFETY: the kernel function takes any address and returns it as an
    // untrusted pointer (see above).
    let device = unsafe { rdonly_cast(base, NET_DEVICE_TYPE.load()) };
    // SAFETY: fault-safe loads (above) of fields of a `struct net_device`.
    unsafe {
        (
            core::ptr::read_volatile((device + state_at) as *const u64),
            core::ptr::read_volatile((device + ifindex_at) as *const u32),
        )
    }
}

/// `bpf_rdonly_cast(address, type)`: the raw kernel-function call that
/// ipmpd links before loading (see `KFUNC_RDONLY_CAST_PLACEHOLDER`).
#[inline(always)]
unsafe fn rdonly_cast(address: usize, btf_type: u32) -> usize {
    const I: [u8; 8] = KFUNC_RDONLY_CAST_PLACEHOLDER;
    let cast: usize;
    // SAFETY: a call clobbers r1-r5 and returns in r0, as declared.
    unsafe {
        core::arch::asm!(
            ".byte {0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}",
            const I[0], const I[1], const I[2], const I[3],
            const I[4], const I[5], const I[6], const I[7],
            inlateout("r1") address => _,
            inlateout("r2") btf_type as u64 => _,
            lateout("r0") cast,
            lateout("r3") _,
            lateout("r4") _,
            lateout("r5") _,
        );
    }
    cast
}

/// The first active member in service, looking from `hash` on: where a
/// flow goes when its bucket's owner and backup are both down.
#[inline(always)]
pub fn any_in_service(table: &FlowTable, hash: u32) -> u8 {
    let n = table.active_count;
    if n == 0 || n > MAX_MEMBERS {
        return NO_MEMBER;
    }
    for i in 0..MAX_MEMBERS {
        if i >= n {
            break;
        }
        let at = hash.wrapping_add(i) % n;
        // The compiler knows `at < n <= 64` and drops the bounds check;
        // the verifier does not know it: mask what it cannot see through.
        // SAFETY: a read of a local.
        let at = unsafe { core::ptr::read_volatile(&at) } as usize & (MAX_MEMBERS as usize - 1);
        match table.active.get(at) {
            Some(&slot) if in_service(slot) => return slot,
            _ => {}
        }
    }
    NO_MEMBER
}

/// Records the device of the member whose slot is the first 4 bytes of the
/// packet. Never attached: ipmpd runs it with BPF_PROG_TEST_RUN and the
/// member as ingress interface, so the context's receive queue is the
/// member's (the context is really a `struct xdp_buff`).
#[xdp]
pub fn ipmp_locate_member(ctx: XdpContext) -> u32 {
    let _ = locate(&ctx);
    xdp_action::XDP_PASS
}

#[inline(always)]
fn locate(ctx: &XdpContext) -> Option<()> {
    let slot = Frame::new(ctx.data(), ctx.data_end()).read::<u32>(0).ok()?;
    let entry = MEMBER_DEVICES.get_ptr_mut(slot)?;
    let buff = ctx.ctx as usize;
    // SAFETY: kernel reads of the context's own receive queue and device.
    let rxq: usize =
        unsafe { bpf_probe_read_kernel((buff + XDP_BUFF_RXQ.load() as usize) as *const usize) }
            .ok()?;
    // SAFETY: as above.
    let device: usize =
        unsafe { bpf_probe_read_kernel((rxq + XDP_RXQ_INFO_DEV.load() as usize) as *const usize) }
            .ok()?;
    // SAFETY: as above.
    let ifindex: u32 = unsafe {
        bpf_probe_read_kernel((device + NET_DEVICE_IFINDEX.load() as usize) as *const u32)
    }
    .ok()?;
    // SAFETY: a valid map value. The fields are written one by one: what
    // the kernel found of the member's link (`taken_out`) stays.
    unsafe {
        (*entry).net_device = device as u64;
        (*entry).ifindex = ifindex;
    }
    Some(())
}
