//! ipmpd's event loop: kernel changes, control requests, timers and
//! signals in; each goes to the group it concerns.
mod checks;
mod group;
mod lock;
mod probing;
mod record;
mod teardown;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Result;
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::{broadcast, mpsc, oneshot, watch},
};
use tracing::{error, info, warn};

use self::group::Group;
use crate::{
    config::Config,
    control::{self, Feeds, Incoming, Request, Response},
    dataplane,
    link_alarm::{Alarm, LinkAlarm},
    metrics::{self, Snapshot},
    model::Status,
    netlink::{self, Netlink},
};

/// Command-line settings that override the configuration file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub socket: Option<PathBuf>,
    pub pin_dir: Option<PathBuf>,
    pub metrics: Option<SocketAddr>,
}

pub async fn run(config_path: &Path, mut config: Config, overrides: Overrides) -> Result<()> {
    check_member_tables(&config)?;
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
    let _lock = lock::take(&pin_root)?;
    // Subscribe before reading any state so no change falls in between.
    let mut changes = netlink::watch()?;
    let mut alarm = LinkAlarm::open()?;
    let configured: Vec<&str> = config.groups.iter().map(|g| g.name.as_str()).collect();
    teardown::unconfigured_groups(&nl, &pin_root, &configured).await?;
    let listener = control::bind(&socket)?;
    let metrics_listener = match overrides.metrics.or(config.daemon.metrics_listen) {
        Some(addr) => Some(metrics::bind(addr).await?),
        None => None,
    };

    // The secret key of the probe tokens, chosen anew at every start:
    // replies to a previous ipmpd's probes are not taken for ours.
    let probe_key: [u64; 2] = rand::random();
    // Probes and events for `ipmpctl stat -p` and `ipmpctl events`.
    let feeds = Feeds {
        probes: broadcast::channel(1024).0,
        events: broadcast::channel(1024).0,
    };
    let started = Started {
        pin_root: pin_root.clone(),
        probe_key,
        feeds: feeds.clone(),
    };
    let mut groups = Vec::new();
    // Groups that could not start (logged), tried again every GROUP_RETRY:
    // one group's trouble does not keep the others from running.
    let mut waiting: Vec<String> = config.groups.iter().map(|g| g.name.clone()).collect();
    let mut retry_due = start_waiting(&config, &mut groups, &mut waiting, &nl, &started).await;

    let (to_daemon, mut requests) = mpsc::channel(16);
    tokio::spawn(control::serve(listener, to_daemon, feeds.clone()));
    let snapshot = |groups: &[Group]| Snapshot {
        groups: groups.iter().map(Group::metrics_source).collect(),
    };
    let (publish, published) = watch::channel(snapshot(&groups));
    if let Some(listener) = metrics_listener {
        tokio::spawn(async move {
            if let Err(e) = metrics::serve(listener, published).await {
                error!("metrics server stopped: {e:#}");
            }
        });
    }
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    info!(
        "ipmpd ready: {} group(s), control socket {}",
        groups.len(),
        socket.display()
    );

    loop {
        let deadline = groups.iter().filter_map(Group::next_deadline).min();
        tokio::select! {
            // A member going down flips the flow table before anything else.
            biased;
            Ok(()) = alarm.ready() => {
                let received = Instant::now();
                alarm.drain(|alarm| {
                    let Alarm::Down(index) = alarm else { return };
                    for g in groups.iter_mut() {
                        if let Err(e) = g.link_alarm(index, received) {
                            error!("{e:#}");
                        }
                    }
                });
                continue;
            }
            Some((received, change)) = changes.recv() => {
                for g in groups.iter_mut() {
                    if let Err(e) = g.on_change(&nl, &change, received).await {
                        error!("{e:#}");
                    }
                }
            }
            i = replies_ready(&groups) => {
                if let Err(e) = groups[i].on_probe_replies(&nl).await {
                    error!("{e:#}");
                }
            }
            Some(incoming) = requests.recv() => {
                if incoming.request.is_change() && incoming.uid != 0 {
                    let _ = incoming.reply.send(Response::Refused("permission denied: only root may change IPMP".into()));
                    continue;
                }
                if incoming.request == Request::Reload {
                    let response = match reload(config_path, &mut config, &mut groups, &nl, &started).await {
                        Ok(()) => Response::Done,
                        Err(problems) => Response::Refused(problems),
                    };
                    let _ = incoming.reply.send(response);
                    continue;
                }
                let incoming = match offline_request(&nl, &mut groups, incoming).await {
                    Ok(Some(incoming)) => incoming,
                    Ok(None) => continue,
                    Err(e) => {
                        error!("{e:#}");
                        continue;
                    }
                };
                if let Some((teardown, written)) = answer(&groups, incoming) {
                    // Every group in the pins, configured or not; the
                    // programs are let go first so the pins' removal
                    // detaches them.
                    drop(groups);
                    if let Err(e) = teardown::everything(&nl, &pin_root).await {
                        error!("teardown: {e:#}");
                    }
                    remove_if_empty(&pin_dir);
                    let _ = std::fs::remove_file(&socket);
                    let _ = teardown.send(Response::Done);
                    let _ = tokio::time::timeout(Duration::from_secs(1), written).await;
                    info!("Torn down; exiting");
                    return Ok(());
                }
            }
            _ = sleep_until(deadline) => {
                for g in groups.iter_mut() {
                    if g.next_deadline().is_some_and(|d| d <= Instant::now()) {
                        // One group's trouble stops neither the others nor
                        // this group's later ticks.
                        if let Err(e) = g.tick(&nl).await {
                            error!("group {}: {e:#}; trying again in a second", g.name());
                            g.retry_later();
                        }
                    }
                }
            }
            _ = sleep_until(retry_due) => {
                retry_due = start_waiting(&config, &mut groups, &mut waiting, &nl, &started).await;
            }
            _ = sighup.recv() => {
                // The errors are logged by reload; the running config stays.
                let _ = reload(config_path, &mut config, &mut groups, &nl, &started).await;
            }
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
        // Whatever a reload added and could not start waits too.
        waiting = config
            .groups
            .iter()
            .map(|g| g.name.clone())
            .filter(|name| !groups.iter().any(|g| g.name() == name))
            .collect();
        if !waiting.is_empty() && retry_due.is_none() {
            retry_due = Some(Instant::now() + GROUP_RETRY);
        }
        publish.send_replace(snapshot(&groups));
    }
    let _ = std::fs::remove_file(&socket);
    info!("Exiting; the pinned dataplane keeps forwarding");
    Ok(())
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

/// How long a group that could not start waits before the next try.
const GROUP_RETRY: Duration = Duration::from_secs(5);

/// Starts the `waiting` groups of `config`; those that fail stay waiting,
/// with their error logged. Returns when to try again, if any wait.
async fn start_waiting(
    config: &Config,
    groups: &mut Vec<Group>,
    waiting: &mut Vec<String>,
    nl: &Netlink,
    started: &Started,
) -> Option<Instant> {
    let mut still = Vec::new();
    for name in waiting.drain(..) {
        let Some(g) = config.groups.iter().find(|g| g.name == name) else {
            continue;
        };
        let feeds = started.feeds.clone();
        match Group::start(
            nl,
            g,
            &config.daemon,
            &started.pin_root,
            started.probe_key,
            feeds,
        )
        .await
        {
            Ok(group) => groups.push(group),
            Err(e) => {
                error!("starting group {name}: {e:#}; trying again in {GROUP_RETRY:?}");
                still.push(name);
            }
        }
    }
    *waiting = still;
    (!waiting.is_empty()).then(|| Instant::now() + GROUP_RETRY)
}

/// Checks `config` against this network namespace as start and reload do
/// (for `ipmpd --check`): the problems, one a line.
pub async fn check_system(config: &Config) -> Result<(), String> {
    let nl = Netlink::connect().map_err(|e| format!("{e:#}"))?;
    checks::check_system(&nl, config).await
}

/// What a group needs from the daemon's start, again for groups a reload adds.
struct Started {
    pin_root: PathBuf,
    probe_key: [u64; 2],
    feeds: Feeds,
}

/// Reads the configuration again; an invalid one is refused with its
/// problems and changes nothing. A valid one is applied as a difference
/// (see [`apply_config`]); when applying fails, the previous configuration
/// is applied back the same way, and the answer says what happened.
async fn reload(
    path: &Path,
    config: &mut Config,
    groups: &mut Vec<Group>,
    nl: &Netlink,
    started: &Started,
) -> Result<(), String> {
    let refuse = |problems: String| {
        error!(
            "Reload of {} refused; the running configuration stays:\n{problems}",
            path.display()
        );
        problems
    };
    let new = Config::load(path).map_err(|e| refuse(e.to_string()))?;
    check_member_tables(&new).map_err(|e| refuse(format!("{e:#}")))?;
    checks::check_system(nl, &new).await.map_err(refuse)?;
    let d = (&config.daemon, &new.daemon);
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
    if let Err(e) = apply_config(nl, &new, groups, started).await {
        let failed = format!("applying {} failed: {e:#}", path.display());
        let outcome = match apply_config(nl, config, groups, started).await {
            Ok(()) => format!("{failed}; the previous configuration is restored"),
            Err(e) => format!(
                "{failed}; restoring the previous configuration failed too: {e:#}; \
                 ipmpd runs on with what it could apply"
            ),
        };
        error!("Reload: {outcome}");
        return Err(outcome);
    }
    *config = new;
    info!("Reloaded {}", path.display());
    Ok(())
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
    let added: Vec<_> = new
        .groups
        .iter()
        .filter(|g| !groups.iter().any(|r| r.name() == g.name))
        .collect();
    for g in added {
        let group = Group::start(
            nl,
            g,
            &new.daemon,
            &started.pin_root,
            started.probe_key,
            started.feeds.clone(),
        )
        .await?;
        groups.push(group);
    }
    Ok(())
}

/// Carries out an offline or online request, or hands any other request
/// back.
async fn offline_request(
    nl: &Netlink,
    groups: &mut [Group],
    incoming: Incoming,
) -> Result<Option<Incoming>> {
    let (interface, offline) = match &incoming.request {
        Request::Offline { interface } => (interface.clone(), true),
        Request::Online { interface } => (interface.clone(), false),
        _ => return Ok(Some(incoming)),
    };
    let response = if let Some(g) = groups.iter_mut().find(|g| g.has_member(&interface)) {
        match g.set_offline(nl, &interface, offline).await? {
            Some(reason) => Response::Refused(reason),
            None => Response::Done,
        }
    } else {
        Response::Refused(format!("{interface} is not a member of any IPMP group"))
    };
    let _ = incoming.reply.send(response);
    Ok(None)
}

/// Answers a request, or returns the reply channels of a teardown, which
/// the loop carries out and answers itself.
fn answer(
    groups: &[Group],
    incoming: Incoming,
) -> Option<(oneshot::Sender<Response>, oneshot::Receiver<()>)> {
    let Incoming {
        request,
        uid,
        reply,
        written,
    } = incoming;
    if request.is_change() && uid != 0 {
        let _ = reply.send(Response::Refused(
            "permission denied: only root may change IPMP".into(),
        ));
        return None;
    }
    match request {
        Request::Status => {
            let status = Status {
                groups: groups.iter().map(Group::status).collect(),
            };
            let _ = reply.send(Response::Status(status));
            None
        }
        Request::Events => {
            let _ = reply.send(Response::Done);
            None
        }
        Request::Probes if groups.iter().any(Group::probes) => {
            let _ = reply.send(Response::Done);
            None
        }
        Request::Probes => {
            let _ = reply.send(Response::Refused(
                "probe-based failure detection is disabled".into(),
            ));
            None
        }
        Request::Teardown => Some((reply, written)),
        // Carried out in the event loop.
        Request::Offline { .. } | Request::Online { .. } | Request::Reload => None,
    }
}

/// Each member's routing table number comes from a hash of its name; two
/// members on one table would undo each other's routes.
fn check_member_tables(config: &Config) -> Result<()> {
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

/// The index of a group whose probe replies are ready.
async fn replies_ready(groups: &[Group]) -> usize {
    let waits = groups.iter().enumerate().map(|(i, g)| {
        Box::pin(async move {
            if let Err(e) = g.replies_ready().await {
                error!("probe replies of group {i}: {e:#}");
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
