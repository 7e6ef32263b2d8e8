//! ipmp's kernel programs. Built for bpfel-unknown-none by ipmp-user's
//! build.rs; on the host this is an empty binary so the workspace builds.
//!
//! One entry point per program; the member programs follow aya's template
//! (`ipmp_member` calls `try_ipmp_member`, whose `Err(())` means "not
//! ours: let it through"):
//! - `member`: XDP on every member; parses Ethernet and IP once and hands
//!   the headers to `neighbour` (ARP and ND answers), `echo` (echo
//!   answers) and `probe` (our probes' replies).
//! - `member_egress`: TC egress on every member (packets held for a
//!   neighbour, the kernel's ARP requests).
//! - `egress`: TC egress on the group interface (spreading), with `flow`
//!   (which member a packet leaves by) and `health` (the kernel's view of
//!   a member's link).
//!
//! `parse` holds the bounds-checked packet access, `csum` the checksums,
//! `maps` the maps; protocol numbers are in `ipmp_common::wire`.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]

#[cfg(target_arch = "bpf")]
mod csum;
#[cfg(target_arch = "bpf")]
mod echo;
#[cfg(target_arch = "bpf")]
mod egress;
#[cfg(target_arch = "bpf")]
mod flow;
#[cfg(target_arch = "bpf")]
mod health;
#[cfg(target_arch = "bpf")]
mod maps;
#[cfg(target_arch = "bpf")]
mod member;
#[cfg(target_arch = "bpf")]
mod member_egress;
#[cfg(target_arch = "bpf")]
mod neighbour;
#[cfg(target_arch = "bpf")]
mod parse;
#[cfg(target_arch = "bpf")]
mod probe;

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

#[cfg(not(target_arch = "bpf"))]
fn main() {}
