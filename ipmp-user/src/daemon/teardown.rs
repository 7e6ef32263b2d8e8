//! Removing what ipmpd set up, from the pins alone (each member's record
//! names its interface, test address and original sysctls): groups and
//! members the configuration no longer names, at start; one group at a
//! reload; every group found in the pins at teardown, with or without a
//! running ipmpd.
use std::{
    fs,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use ipmp_common::{Member, SAVED_SYSCTLS};
use ipnet::{IpNet, Ipv4Net};
use tracing::{info, warn};

use super::record;
use crate::{
    dataplane,
    netlink::{member_table, Netlink},
    sysctl,
};

/// Removes a member's routing (policy rules, table), its test address, and
/// puts its sysctls back, as its record tells. Its XDP program goes with
/// its pin (see the callers).
pub async fn member(nl: &Netlink, m: &Member) -> Result<()> {
    let name = record::name(m);
    nl.remove_member_routing(&name, member_table(&name)).await?;
    let Some(link) = nl.link(&name).await? else {
        return Ok(());
    };
    if m.test_v4 != 0 {
        let address = Ipv4Net::new(Ipv4Addr::from(m.test_v4.to_ne_bytes()), m.test_v4_prefix)
            .with_context(|| format!("the test address of {name} in its record"))?;
        nl.delete_address(link.index, IpNet::V4(address)).await?;
    }
    if let Some(saved) = record::saved_sysctls(m) {
        sysctl::restore_member(&name, saved)?;
    }
    Ok(())
}

/// Removes the group pinned in `dir` (its name is the group interface's):
/// its members' leftovers, the group interface with its addresses and
/// routes, and the pins, which detaches the programs once no ipmpd holds
/// them. Returns the members' original sysctls, for `all`'s rp_filter.
pub async fn group(nl: &Netlink, dir: &Path) -> Result<Vec<[u8; SAVED_SYSCTLS]>> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let members = dataplane::pinned_members(dir).unwrap_or_else(|e| {
        warn!("Group {name}: no member records in its pins ({e:#}); removing the rest");
        Vec::new()
    });
    for (_, m) in &members {
        member(nl, m).await?;
    }
    if let Some(link) = nl.link(&name).await? {
        // Deleting one end of the veth pair deletes both, with the data
        // addresses and routes on it.
        nl.delete_link(link.index).await?;
    }
    fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    // The kernel lets a link go (detaching its program) in deferred work
    // once its last pin is removed: a teardown is done when it has.
    for (_, m) in &members {
        detached(nl, &record::name(m)).await?;
    }
    info!("Group {name} removed");
    Ok(members
        .iter()
        .filter_map(|(_, m)| record::saved_sysctls(m))
        .collect())
}

/// How long a teardown waits for the kernel to detach a member's program.
const DETACH_WAIT: Duration = Duration::from_secs(2);

/// Waits until `member` runs no XDP program; warns after [`DETACH_WAIT`]
/// (an ipmpd still running holds the program, for one).
pub async fn detached(nl: &Netlink, member: &str) -> Result<()> {
    let until = Instant::now() + DETACH_WAIT;
    while nl.has_xdp(member).await? {
        if Instant::now() >= until {
            warn!("{member} still runs an XDP program after {DETACH_WAIT:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// The group folders under this namespace's pin folder.
pub fn pinned_groups(pin_root: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(pin_root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other.with_context(|| format!("reading {}", pin_root.display()))?,
    };
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// At start: removes every pinned group the configuration does not name.
pub async fn unconfigured_groups(nl: &Netlink, pin_root: &Path, configured: &[&str]) -> Result<()> {
    for dir in pinned_groups(pin_root)? {
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        if !configured.contains(&name.as_ref()) {
            info!("Group {name} is no longer configured: removing what ipmpd set up for it");
            group(nl, &dir).await?;
        }
    }
    Ok(())
}

/// Removes every group found in the pins and puts `all`'s rp_filter back.
/// No ipmpd may hold the groups' programs (they would stay attached).
pub async fn everything(nl: &Netlink, pin_root: &Path) -> Result<()> {
    let mut saved = Vec::new();
    for dir in pinned_groups(pin_root)? {
        saved.extend(group(nl, &dir).await?);
    }
    sysctl::restore_all_rp_filter(saved)?;
    let _ = fs::remove_dir(pin_root);
    Ok(())
}
