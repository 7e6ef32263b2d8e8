//! ipmpd's event loop: kernel changes, control requests, timers and
//! signals in; each goes to the group it concerns. Control requests are
//! checked and dispatched in [`requests`]; reloads and the groups that
//! wait to start are in [`reload`].
mod checks;
mod group;
mod lock;
mod probing;
mod record;
mod reload;
mod requests;
mod teardown;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::Result;
use tokio::{
    signal::unix::{signal, Signal, SignalKind},
    sync::mpsc,
};
use tracing::{error, info, warn};

use self::{group::Group, reload::Started, requests::Flow};
use crate::{
    config::Config,
    control::{self, Incoming},
    dataplane,
    link_alarm::{Alarm, LinkAlarm},
    metrics::{self, Snapshot},
    netlink::{self, Change, Netlink},
};

/// Command-line settings that override the configuration file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub socket: Option<PathBuf>,
    pub pin_dir: Option<PathBuf>,
    pub metrics: Option<SocketAddr>,
}

/// The running daemon: its configuration and groups, and what it needs to
/// reload, answer and tear down.
struct Daemon {
    config_path: PathBuf,
    config: Config,
    nl: Netlink,
    groups: Vec<Group>,
    /// Groups that could not start (logged), tried again every
    /// [`reload::GROUP_RETRY`]: one group's trouble does not keep the
    /// others from running.
    waiting: Vec<String>,
    /// When the waiting groups are tried again.
    retry_due: Option<Instant>,
    started: Started,
    pin_dir: PathBuf,
    socket: PathBuf,
    /// No other ipmpd runs in this namespace while this one does.
    _lock: lock::InstanceLock,
}

/// What the event loop waits on, besides the groups' timers and replies.
struct Sources {
    alarm: LinkAlarm,
    changes: tokio::sync::mpsc::UnboundedReceiver<(Instant, Change)>,
    requests: mpsc::Receiver<Incoming>,
    /// The metrics server's scrapes, each asking for a snapshot.
    snapshots: mpsc::Receiver<metrics::SnapshotRequest>,
    sigterm: Signal,
    sigint: Signal,
    sighup: Signal,
}

pub async fn run(config_path: &Path, config: Config, overrides: Overrides) -> Result<()> {
    let (daemon, sources) = setup(config_path, config, overrides).await?;
    daemon.serve(sources).await
}

/// Checks the configuration against the system, takes the namespace's
/// pins in hand, starts the groups and the control and metrics servers.
async fn setup(
    config_path: &Path,
    config: Config,
    overrides: Overrides,
) -> Result<(Daemon, Sources)> {
    reload::check_member_tables(&config)?;
    let socket = overrides
        .socket
        .unwrap_or_else(|| config.daemon.control_socket.clone());
    let pin_dir = overrides
        .pin_dir
        .unwrap_or_else(|| config.daemon.pin_dir.clone());
    let nl = Netlink::connect()?;
    // A configuration the system refuses touches nothing, pins included.
    checks::check_system(&nl, &config)
        .await
        .map_err(|problems| anyhow::anyhow!("{}: {problems}", config_path.display()))?;
    let pin_root = dataplane::namespace_pin_dir(&pin_dir)?;
    let lock = lock::take(&pin_root)?;
    // Subscribe before reading any state so no change falls in between.
    let changes = netlink::watch()?;
    let alarm = LinkAlarm::open()?;
    let configured: Vec<&str> = config.groups.iter().map(|g| g.name.as_str()).collect();
    teardown::unconfigured_groups(&nl, &pin_root, &configured).await?;
    let listener = control::bind(&socket)?;
    let metrics_listener = match overrides.metrics.or(config.daemon.metrics_listen) {
        Some(addr) => Some(metrics::bind(addr).await?),
        None => None,
    };
    let started = Started::new(pin_root);
    let mut daemon = Daemon {
        config_path: config_path.to_path_buf(),
        waiting: config.groups.iter().map(|g| g.name.clone()).collect(),
        config,
        nl,
        groups: Vec::new(),
        retry_due: None,
        started,
        pin_dir,
        socket,
        _lock: lock,
    };
    daemon.start_waiting().await;
    let (to_daemon, requests) = mpsc::channel(16);
    let feeds = daemon.started.feeds.clone();
    tokio::spawn(control::serve(listener, to_daemon, feeds));
    // A scrape at a time, and one waiting.
    let (ask, snapshots) = mpsc::channel(2);
    if let Some(listener) = metrics_listener {
        let first = daemon.snapshot();
        tokio::spawn(async move {
            if let Err(e) = metrics::serve(listener, ask, first).await {
                error!("metrics server stopped: {e:#}");
            }
        });
    }
    let sources = Sources {
        alarm,
        changes,
        requests,
        snapshots,
        sigterm: signal(SignalKind::terminate())?,
        sigint: signal(SignalKind::interrupt())?,
        sighup: signal(SignalKind::hangup())?,
    };
    keep_in_memory();
    info!(
        "ipmpd ready: {} group(s), control socket {}",
        daemon.groups.len(),
        daemon.socket.display()
    );
    Ok((daemon, sources))
}

/// Locks ipmpd's pages in memory as they are used: a daemon that sleeps
/// between its ticks is what reclaim takes pages from first, and a tick,
/// a probe or a link alarm that must fault its code back in from disk
/// first waits milliseconds for it (measured: 2 to 5 ms per tick on a host
/// that reclaims cold pages, 7 ms of CPU a second with 64 members idle).
/// On fault, not at once: nothing is read in that ipmpd does not use, so
/// the resident size stays what it was.
fn keep_in_memory() {
    // SAFETY: mlockall takes flags only.
    let rc = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE | libc::MCL_ONFAULT) };
    if rc != 0 {
        warn!(
            "Could not lock ipmpd in memory ({}): under memory pressure its reactions may \
             wait for its pages to be read back; it needs CAP_IPC_LOCK or a higher \
             RLIMIT_MEMLOCK (LimitMEMLOCK= in its unit)",
            std::io::Error::last_os_error()
        );
    }
}

impl Daemon {
    /// The event loop, until a signal stops it or a teardown is done.
    async fn serve(mut self, mut s: Sources) -> Result<()> {
        loop {
            let deadline = self.groups.iter().filter_map(Group::next_deadline).min();
            tokio::select! {
                // A member going down flips the flow table before anything else.
                biased;
                Ok(()) = s.alarm.ready() => {
                    self.link_alarm(&mut s.alarm);
                    continue;
                }
                Some((received, change)) = s.changes.recv() => {
                    for g in self.groups.iter_mut() {
                        if let Err(e) = g.on_change(&self.nl, &change, received).await {
                            error!("{e:#}");
                        }
                    }
                }
                i = first_ready(&self.groups, "probe replies", Group::replies_ready) => {
                    if let Err(e) = self.groups[i].on_probe_replies(&self.nl).await {
                        error!("{e:#}");
                    }
                }
                i = first_ready(&self.groups, "pin folder", Group::pins_removed) => {
                    self.groups[i].on_pins_removed();
                }
                Some(scrape) = s.snapshots.recv() => {
                    let _ = scrape.send(self.snapshot());
                    continue;
                }
                Some(incoming) = s.requests.recv() => {
                    if self.dispatch(incoming).await == Flow::Exit {
                        return Ok(());
                    }
                }
                _ = sleep_until(deadline) => self.tick().await,
                _ = sleep_until(self.retry_due) => self.start_waiting().await,
                _ = s.sighup.recv() => {
                    // The errors are logged by reload; the running config stays.
                    let _ = self.reload().await;
                }
                _ = s.sigterm.recv() => break,
                _ = s.sigint.recv() => break,
            }
            self.after_event();
        }
        let _ = std::fs::remove_file(&self.socket);
        info!("Exiting; the pinned dataplane keeps forwarding");
        Ok(())
    }

    /// What the link alarm heard, read at once: links down, and multicast
    /// joins and leaves.
    fn link_alarm(&mut self, alarm: &mut LinkAlarm) {
        let received = Instant::now();
        alarm.drain(|alarm| {
            for g in self.groups.iter_mut() {
                match alarm {
                    Alarm::Down(index) => {
                        if let Err(e) = g.link_alarm(index, received) {
                            error!("{e:#}");
                        }
                    }
                    Alarm::Memberships(index) => g.memberships_changed(index),
                }
            }
        });
    }

    /// Serves the groups' timers that are due.
    async fn tick(&mut self) {
        for g in self.groups.iter_mut() {
            if g.next_deadline().is_some_and(|d| d <= Instant::now()) {
                // One group's trouble stops neither the others nor this
                // group's later ticks.
                if let Err(e) = g.tick(&self.nl).await {
                    error!("group {}: {e:#}; trying again in a second", g.name());
                    g.retry_later();
                }
            }
        }
    }

    /// After each event: the configured groups that do not run wait
    /// (whatever a reload added and could not start, too).
    fn after_event(&mut self) {
        self.waiting = self
            .config
            .groups
            .iter()
            .map(|g| g.name.clone())
            .filter(|name| !self.groups.iter().any(|g| g.name() == name))
            .collect();
        if !self.waiting.is_empty() && self.retry_due.is_none() {
            self.retry_due = Some(Instant::now() + reload::GROUP_RETRY);
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            groups: self.groups.iter().map(Group::metrics_source).collect(),
        }
    }
}

/// `ipmpd --teardown`: removes every group found in the pins, without a
/// running ipmpd (one that runs is refused: use `ipmpctl teardown`).
pub async fn teardown(config: &Config, overrides: Overrides) -> Result<()> {
    let pin_dir = overrides
        .pin_dir
        .unwrap_or_else(|| config.daemon.pin_dir.clone());
    let pin_root = dataplane::namespace_pin_dir(&pin_dir)?;
    let _lock = lock::take(&pin_root)
        .map_err(|e| anyhow::anyhow!("{e:#}; to tear down through it, run ipmpctl teardown"))?;
    let nl = Netlink::connect()?;
    teardown::everything(&nl, &pin_root).await?;
    remove_if_empty(&pin_dir);
    info!("Torn down");
    Ok(())
}

/// Checks `config` against this network namespace as start and reload do
/// (for `ipmpd --check`): the problems, one a line.
pub async fn check_system(config: &Config) -> Result<(), String> {
    let nl = Netlink::connect().map_err(|e| format!("{e:#}"))?;
    checks::check_system(&nl, config).await
}

/// The index of the first group for which `wait` resolves (its probe
/// replies are ready, say); a group whose wait fails is logged and left out.
async fn first_ready<'a, F, W>(groups: &'a [Group], what: &str, wait: W) -> usize
where
    W: Fn(&'a Group) -> F,
    F: std::future::Future<Output = Result<()>> + 'a,
{
    let waits = groups.iter().enumerate().map(|(i, g)| {
        let ready = wait(g);
        Box::pin(async move {
            if let Err(e) = ready.await {
                error!("{what} of group {i}: {e:#}");
                std::future::pending::<()>().await;
            }
            i
        })
    });
    if groups.is_empty() {
        std::future::pending::<usize>().await
    } else {
        futures::future::select_all(waits).await.0
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

fn remove_if_empty(dir: &Path) {
    let _ = std::fs::remove_dir(dir);
}
