//! Starting groups and reloading the configuration: groups that cannot
//! start wait and are tried again; a reload is applied as a difference,
//! and undone the same way when it fails.
use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Result;
use tokio::sync::broadcast;
use tracing::{error, info, warn};

use super::{checks, group::Group, Daemon};
use crate::{
    config::Config,
    control::Feeds,
    netlink::{self, Netlink},
};

/// How long a group that could not start waits before the next try.
pub(super) const GROUP_RETRY: Duration = Duration::from_secs(5);

/// What a group needs from the daemon's start, again for groups a reload adds.
pub(super) struct Started {
    pub pin_root: PathBuf,
    /// The secret key of the probe tokens, chosen anew at every start:
    /// replies to a previous ipmpd's probes are not taken for ours.
    pub probe_key: [u64; 2],
    /// Probes and events for `ipmpctl stat -p` and `ipmpctl events`.
    pub feeds: Feeds,
}

impl Started {
    pub fn new(pin_root: PathBuf) -> Started {
        Started {
            pin_root,
            probe_key: rand::random(),
            feeds: Feeds {
                probes: broadcast::channel(1024).0,
                events: broadcast::channel(1024).0,
            },
        }
    }

    async fn start(&self, nl: &Netlink, config: &Config, name: &str) -> Option<Result<Group>> {
        let g = config.groups.iter().find(|g| g.name == name)?;
        let feeds = self.feeds.clone();
        Some(Group::start(nl, g, &config.daemon, &self.pin_root, self.probe_key, feeds).await)
    }
}

impl Daemon {
    /// Starts the waiting groups; those that fail stay waiting, with their
    /// error logged, and are tried again after [`GROUP_RETRY`].
    pub(super) async fn start_waiting(&mut self) {
        let mut still = Vec::new();
        for name in std::mem::take(&mut self.waiting) {
            match self.started.start(&self.nl, &self.config, &name).await {
                None => {}
                Some(Ok(group)) => self.groups.push(group),
                Some(Err(e)) => {
                    error!("starting group {name}: {e:#}; trying again in {GROUP_RETRY:?}");
                    still.push(name);
                }
            }
        }
        self.waiting = still;
        self.retry_due = (!self.waiting.is_empty()).then(|| Instant::now() + GROUP_RETRY);
    }

    /// Reads the configuration again; an invalid one is refused with its
    /// problems and changes nothing. A valid one is applied as a difference
    /// (see [`apply_config`]); when applying fails, the previous
    /// configuration is applied back the same way, and the answer says what
    /// happened.
    pub(super) async fn reload(&mut self) -> Result<(), String> {
        let path = self.config_path.clone();
        let refuse = |problems: String| {
            error!(
                "Reload of {} refused; the running configuration stays:\n{problems}",
                path.display()
            );
            problems
        };
        let new = Config::load(&path).map_err(|e| refuse(e.to_string()))?;
        check_member_tables(&new).map_err(|e| refuse(format!("{e:#}")))?;
        checks::check_system(&self.nl, &new).await.map_err(refuse)?;
        warn_restart_settings(&self.config, &new);
        let (nl, groups, started) = (&self.nl, &mut self.groups, &self.started);
        if let Err(e) = apply_config(nl, &new, groups, started).await {
            let failed = format!("applying {} failed: {e:#}", path.display());
            let outcome = match apply_config(nl, &self.config, groups, started).await {
                Ok(()) => format!("{failed}; the previous configuration is restored"),
                Err(e) => format!(
                    "{failed}; restoring the previous configuration failed too: {e:#}; \
                     ipmpd runs on with what it could apply"
                ),
            };
            error!("Reload: {outcome}");
            return Err(outcome);
        }
        self.config = new;
        info!("Reloaded {}", path.display());
        Ok(())
    }
}

/// Daemon settings a reload cannot change are said to wait for a restart.
fn warn_restart_settings(old: &Config, new: &Config) {
    let d = (&old.daemon, &new.daemon);
    for (setting, changed) in [
        ("control_socket", d.0.control_socket != d.1.control_socket),
        ("pin_dir", d.0.pin_dir != d.1.pin_dir),
        ("metrics_listen", d.0.metrics_listen != d.1.metrics_listen),
        ("xdp_mode", d.0.xdp_mode != d.1.xdp_mode),
    ] {
        if changed {
            warn!("{setting} changed: it takes effect when ipmpd restarts");
        }
    }
}

/// Brings the running groups to `new` as a difference: groups that went
/// are torn down, new ones started, the others reconfigured in place.
async fn apply_config(
    nl: &Netlink,
    new: &Config,
    groups: &mut Vec<Group>,
    started: &Started,
) -> Result<()> {
    let mut i = 0;
    while i < groups.len() {
        match new.groups.iter().find(|g| g.name == groups[i].name()) {
            Some(g) => {
                groups[i].reconfigure(nl, g, &new.daemon).await?;
                i += 1;
            }
            None => groups.remove(i).teardown(nl).await?,
        }
    }
    let added: Vec<String> = new
        .groups
        .iter()
        .filter(|g| !groups.iter().any(|r| r.name() == g.name))
        .map(|g| g.name.clone())
        .collect();
    for name in added {
        if let Some(group) = started.start(nl, new, &name).await {
            groups.push(group?);
        }
    }
    Ok(())
}

/// Each member's routing table number comes from a hash of its name; two
/// members on one table would undo each other's routes.
pub(super) fn check_member_tables(config: &Config) -> Result<()> {
    let mut seen = std::collections::HashMap::new();
    for m in config.groups.iter().flat_map(|g| &g.members) {
        let table = netlink::member_table(&m.interface);
        if let Some(other) = seen.insert(table, &m.interface) {
            anyhow::bail!(
                "members {other} and {} would share routing table {table}; rename one of the interfaces",
                m.interface
            );
        }
    }
    Ok(())
}
