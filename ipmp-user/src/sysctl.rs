//! Kernel settings a member needs, written through /proc/sys (which shows
//! the settings of ipmpd's own network namespace).
use std::fs;

use anyhow::{Context, Result};
use ipmp_common::{SAVED_ALL_RP_FILTER, SAVED_SYSCTLS};

pub fn set(path: &str, value: &str) -> Result<()> {
    let full = format!("/proc/sys/{path}");
    fs::write(&full, value).with_context(|| format!("writing {value} to {full}"))
}

/// Replies to the group's data addresses arrive on members that carry no
/// such address: reverse-path filtering (strict or loose; the effective
/// value is the larger of `all` and the member's) would drop them.
///
/// ARP for the data addresses is the dataplane's (on the bound member
/// only): the kernel answers only for the member's own addresses
/// (arp_ignore 1), and asks from the member's own address where it has one
/// in the target's subnet (arp_announce 2), so that asking never moves a
/// peer's entry for a data address to a member it is not bound to.
///
/// The data addresses and routes live on the group interface: a member
/// keeps accepting Router Advertisements (the routers it hears are probe
/// targets) but takes no SLAAC address (autoconf 0) and no default route
/// (accept_ra_defrtr 0) of its own from them.
///
/// Returns the settings as they were (by `ipmp_common::SAVED_*` index),
/// for [`restore_member`] at teardown.
pub fn prepare_member(member: &str) -> Result<[u8; SAVED_SYSCTLS]> {
    let paths = member_paths(member);
    let mut was = [0; SAVED_SYSCTLS];
    for (saved, path) in was.iter_mut().zip(&paths) {
        *saved = get(path)?;
    }
    for (path, value) in paths.iter().zip(OURS) {
        set(path, value)?;
    }
    Ok(was)
}

/// What [`prepare_member`] writes, by `SAVED_*` index.
const OURS: [&str; SAVED_SYSCTLS] = ["0", "0", "1", "2", "0", "0"];

/// The member's sysctls by `SAVED_*` index (the first is `all`'s).
fn member_paths(member: &str) -> [String; SAVED_SYSCTLS] {
    [
        "net/ipv4/conf/all/rp_filter".to_string(),
        format!("net/ipv4/conf/{member}/rp_filter"),
        format!("net/ipv4/conf/{member}/arp_ignore"),
        format!("net/ipv4/conf/{member}/arp_announce"),
        format!("net/ipv6/conf/{member}/autoconf"),
        format!("net/ipv6/conf/{member}/accept_ra_defrtr"),
    ]
}

/// Puts back the member's own settings as [`prepare_member`] found them
/// (not `all`'s: see [`restore_all_rp_filter`]).
pub fn restore_member(member: &str, saved: [u8; SAVED_SYSCTLS]) -> Result<()> {
    let paths = member_paths(member);
    for (path, value) in paths.iter().zip(saved).skip(SAVED_ALL_RP_FILTER + 1) {
        set(path, &value.to_string())?;
    }
    Ok(())
}

/// Puts back `all`'s rp_filter once no member needs it off: the largest
/// value the members found (the first one prepared found the original;
/// the others may have found ipmpd's 0).
pub fn restore_all_rp_filter(saved: impl IntoIterator<Item = [u8; SAVED_SYSCTLS]>) -> Result<()> {
    match saved.into_iter().map(|s| s[SAVED_ALL_RP_FILTER]).max() {
        Some(value) => set(
            &member_paths("all")[SAVED_ALL_RP_FILTER],
            &value.to_string(),
        ),
        None => Ok(()),
    }
}

fn get(path: &str) -> Result<u8> {
    let full = format!("/proc/sys/{path}");
    let text = fs::read_to_string(&full).with_context(|| format!("reading {full}"))?;
    text.trim()
        .parse()
        .with_context(|| format!("{full} holds {text:?}, not a small number"))
}

/// The group interface's veth peer never carries traffic: keep IPv6 (and
/// with it router solicitations and DAD) off it.
pub fn quiet_peer(peer: &str) -> Result<()> {
    set(&format!("net/ipv6/conf/{peer}/disable_ipv6"), "1")
}
