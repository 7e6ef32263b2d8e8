//! Link failover side by side, in one run, interleaved: ipmp with ipmpd
//! running, ipmp with ipmpd stopped (SIGSTOP before the cut), and the
//! kernel's own ECMP route over the same members as the reference; each
//! idle and with both CPUs busy. A real-time sender streams 20k datagrams/s
//! and never blocks (a datagram the stack refuses is lost); the cable of the
//! member carrying the stream is pulled 300 ms in (one ioctl); what counts
//! is the datagrams lost from the moment the cut call returned, and, beside
//! it, those lost in the whole stream.
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

use anyhow::{bail, Result};
use ipmp_tests::{
    daemon::Daemon,
    netns::unique,
    topology::{Topology, DATA_V4, MEMBERS},
};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

use super::failover_table_latencies;
use super::LINK_BASED;

const INTERVAL: Duration = Duration::from_micros(50);
const PACKETS: u32 = 20_000;
const CUT_AFTER: Duration = Duration::from_millis(300);
/// Cuts per contender. Each ipmp contender has its own topology and cuts
/// its members in turn: a third link-up of one member within 60 s would
/// (rightly) trip the anti-flap rule.
pub const ROUNDS: usize = 5;

enum Mechanism {
    Ipmp {
        daemon: Daemon,
        stop_ipmpd: bool,
    },
    /// `ip route ... nexthop dev m0 nexthop dev m1 ...` with
    /// `ignore_routes_with_linkdown`.
    Ecmp,
}

struct Contender {
    name: &'static str,
    busy: bool,
    topology: Topology,
    mechanism: Mechanism,
    lost_after_cut: Vec<u32>,
    lost_in_all: Vec<u32>,
}

pub fn run() -> Result<Value> {
    // ipmpd logs its own event-to-table time at debug level.
    std::env::set_var("IPMP_TEST_LOG", "debug");
    let mut contenders = contenders()?;
    for round in 0..ROUNDS {
        for (i, c) in contenders.iter_mut().enumerate() {
            let member = MEMBERS[round % MEMBERS.len()];
            let ports = 42_000 + 100 * (round * 8 + i) as u16;
            c.cut(member, ports..ports + 64)?;
        }
    }
    Ok(json!({
        "datagrams_per_second": (1.0 / INTERVAL.as_secs_f64()).round(),
        "stream_datagrams": PACKETS,
        "goal_max_lost_after_cut": 2,
        "contenders": contenders.iter().map(Contender::summary).collect::<Vec<_>>(),
    }))
}

/// ipmp with ipmpd running and stopped, and the kernel's ECMP route, each
/// idle and busy, each in a topology of its own.
fn contenders() -> Result<Vec<Contender>> {
    let mut contenders = Vec::new();
    for busy in [false, true] {
        for (name, stop_ipmpd) in [
            ("ipmp, ipmpd running", false),
            ("ipmp, ipmpd stopped", true),
        ] {
            let topology = Topology::build(&unique("cut"))?;
            let daemon = Daemon::start(&topology.host, &LINK_BASED)?;
            daemon.wait_group("ok")?;
            contenders.push(Contender::new(
                name,
                busy,
                topology,
                Mechanism::Ipmp { daemon, stop_ipmpd },
            ));
        }
    }
    for busy in [false, true] {
        let ecmp = Topology::build(&unique("cut"))?;
        ecmp_route(&ecmp)?;
        contenders.push(Contender::new(
            "kernel ECMP route",
            busy,
            ecmp,
            Mechanism::Ecmp,
        ));
    }
    Ok(contenders)
}

impl Contender {
    /// The losses of every cut (min / median / max) and ipmpd's own
    /// event-to-table times.
    fn summary(&self) -> Value {
        let mut after = self.lost_after_cut.clone();
        after.sort_unstable();
        let mut in_all = self.lost_in_all.clone();
        in_all.sort_unstable();
        let event_to_table_us = match &self.mechanism {
            Mechanism::Ipmp { daemon, .. } => {
                let mut us = failover_table_latencies(&daemon.log_text());
                us.sort_by(f64::total_cmp);
                us
            }
            Mechanism::Ecmp => Vec::new(),
        };
        json!({
            "mechanism": self.name,
            "cpus": if self.busy { "busy" } else { "idle" },
            "cuts": after.len(),
            "lost_after_cut": self.lost_after_cut,
            "lost_in_all": self.lost_in_all,
            "min": after.first(),
            "median": after[after.len() / 2],
            "max": after.last(),
            "in_all_min": in_all.first(),
            "in_all_median": in_all[in_all.len() / 2],
            "in_all_max": in_all.last(),
            "event_to_flow_table_us": event_to_table_us,
        })
    }

    fn new(name: &'static str, busy: bool, topology: Topology, mechanism: Mechanism) -> Self {
        Contender {
            name,
            busy,
            topology,
            mechanism,
            lost_after_cut: Vec::new(),
            lost_in_all: Vec::new(),
        }
    }

    /// One trial: a stream through `member`, its cable pulled mid-stream,
    /// then everything put back as it was.
    fn cut(&mut self, member: &str, ports: std::ops::Range<u16>) -> Result<()> {
        let t = &self.topology;
        let load = self.busy.then(BusyCpus::start);
        if let Mechanism::Ipmp {
            daemon,
            stop_ipmpd: true,
        } = &self.mechanism
        {
            daemon.signal(Signal::SIGSTOP)?;
        }
        let stream = t.stream_through(member, ports, INTERVAL, PACKETS, true)?;
        thread::sleep(CUT_AFTER);
        let progress = stream.progress();
        let mark = t.pull_cable_then(member, move || progress.now())?;
        let (in_all, after_cut) = stream.lost_since(mark)?;
        drop(load);
        self.lost_after_cut.push(after_cut);
        self.lost_in_all.push(in_all);
        t.plug_cable(member)?;
        match &self.mechanism {
            Mechanism::Ipmp { daemon, stop_ipmpd } => {
                if *stop_ipmpd {
                    daemon.signal(Signal::SIGCONT)?;
                }
                daemon.wait_member(member, "state", "ok")?;
                daemon.wait_group("ok")
            }
            Mechanism::Ecmp => wait_linkdown_cleared(t),
        }
    }
}

/// The kernel's multipath over the members, as TOOLCHAIN.md measured it:
/// the data address on `lo`, a 5-tuple hash, routes over a link without
/// carrier ignored.
fn ecmp_route(t: &Topology) -> Result<()> {
    let h = &t.host;
    h.sysctl("net.ipv4.fib_multipath_hash_policy", "1")?;
    h.sysctl("net.ipv4.conf.all.ignore_routes_with_linkdown", "1")?;
    h.sysctl("net.ipv4.conf.all.rp_filter", "0")?;
    h.ip(&format!("addr add {DATA_V4}/32 dev lo"))?;
    let nexthops: Vec<String> = MEMBERS.iter().map(|m| format!("nexthop dev {m}")).collect();
    h.ip(&format!(
        "route add 192.0.2.0/24 src {DATA_V4} {}",
        nexthops.join(" ")
    ))?;
    Ok(())
}

fn wait_linkdown_cleared(t: &Topology) -> Result<()> {
    for _ in 0..250 {
        if !t.host.ip("route show 192.0.2.0/24")?.contains("linkdown") {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(20));
    }
    bail!("the ECMP route kept a linkdown next hop for 5 s")
}

/// Both CPUs spinning at normal priority while alive: ipmpd has to compete
/// for a CPU, the real-time stream does not.
struct BusyCpus {
    stop: Arc<AtomicBool>,
    spinners: Vec<thread::JoinHandle<()>>,
}

impl BusyCpus {
    fn start() -> BusyCpus {
        let stop = Arc::new(AtomicBool::new(false));
        let cpus = thread::available_parallelism().map_or(2, |n| n.get());
        let spinners = (0..cpus)
            .map(|_| {
                let stop = stop.clone();
                thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        BusyCpus { stop, spinners }
    }
}

impl Drop for BusyCpus {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for s in self.spinners.drain(..) {
            let _ = s.join();
        }
    }
}
