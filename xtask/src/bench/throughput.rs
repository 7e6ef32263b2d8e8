//! Throughput through the group against the plain path of the same host to
//! the same switch, interleaved (group, plain, group, plain, ...) in one
//! run: TCP (`iperf3 -P 4`) and 64-byte UDP frames (received packets/s).
//! For the UDP frames two references: the design's floor, the same two
//! device hops with programs that do nothing but redirect (`ipmp-bench
//! floor`), and one hop, the kernel's ECMP route over the same members.
//! So the table shows what ipmp's programs cost, what the group
//! interface's hop costs, and what a path without that hop reaches.
use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    thread,
    time::Duration,
};

use anyhow::{ensure, Context, Result};
use ipmp_tests::{
    daemon::Daemon,
    netns::{unique, Netns},
};
use serde_json::{json, Value};

const ROUNDS: usize = 7;
const SECONDS: u32 = 5;
/// UDP payload of a 64-byte frame: 64 - 4 (FCS) - 14 - 20 - 8.
const UDP_PAYLOAD_64B_FRAME: &str = "18";
const GROUP_SRC: &str = "192.0.2.200";
const GROUP_DST: &str = "192.0.2.10";
const PLAIN_SRC: &str = "198.51.100.1";
const PLAIN_DST: &str = "198.51.100.10";
/// The one-hop reference: an address of the host's loopback, routed to
/// the peer by an ECMP route straight over the members.
const ONE_HOP_SRC: &str = "203.0.113.1";
const ONE_HOP_DST: &str = "203.0.113.10";

/// A host with three members and one plain interface on one switch, and a
/// peer on that switch with an address in each subnet.
struct Bench {
    host: Netns,
    _switch: Netns,
    peer: Netns,
    _daemon: Daemon,
}

pub fn run() -> Result<Value> {
    let b = Bench::build()?;
    let (mut tcp, mut udp) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    let (mut floor, mut floor_error) = (Vec::new(), None);
    let mut one_hop = Vec::new();
    for _ in 0..ROUNDS {
        for (i, (src, dst)) in [(GROUP_SRC, GROUP_DST), (PLAIN_SRC, PLAIN_DST)]
            .into_iter()
            .enumerate()
        {
            tcp[i].push(
                b.iperf(src, dst, &["-P", "4"], |end| {
                    end["sum_received"]["bits_per_second"].as_f64()
                })? / 1e9,
            );
            udp[i].push(b.udp(src, dst)?);
            // The floor straight after the group's own run, which it
            // follows as closely as the plain path follows its TCP run.
            // A reference, not a goal: a kernel without tcx (before 6.6)
            // cannot put the programs first; the rest of the bench goes on.
            if i == 0 && floor_error.is_none() {
                match b.floor(|| b.udp(GROUP_SRC, GROUP_DST)) {
                    Ok(pps) => floor.push(pps),
                    Err(e) => floor_error = Some(format!("{e:#}")),
                }
            }
        }
        one_hop.push(b.udp(ONE_HOP_SRC, ONE_HOP_DST)?);
    }
    Ok(json!({
        "rounds": ROUNDS,
        "seconds": SECONDS,
        "tcp_gbit_s": { "group": tcp[0], "plain": tcp[1], "ratio": ratios(&tcp) },
        "udp_64b_pps": {
            "group": udp[0], "plain": udp[1], "ratio": ratios(&udp),
            "floor": floor, "floor_error": floor_error,
            "floor_ratio": ratios(&[floor.clone(), udp[1].clone()]),
            "one_hop": one_hop, "one_hop_ratio": ratios(&[one_hop.clone(), udp[1].clone()]),
        },
    }))
}

/// Group/plain per round, and their min / median / max (null when there
/// are no rounds).
fn ratios([group, plain]: &[Vec<f64>; 2]) -> Value {
    let mut r: Vec<f64> = group.iter().zip(plain).map(|(g, p)| g / p).collect();
    if r.is_empty() {
        return Value::Null;
    }
    r.sort_by(f64::total_cmp);
    json!({ "min": r.first(), "median": r[r.len() / 2], "max": r.last(), "rounds": r })
}

impl Bench {
    fn build() -> Result<Bench> {
        let (host, switch, peer) = (
            Netns::create(&unique("tput"))?,
            Netns::create(&unique("tput"))?,
            Netns::create(&unique("tput"))?,
        );
        switch.ip("link add br0 type bridge")?;
        switch.ip("link set br0 up")?;
        let cable = |ns: &Netns, ifname: &str, port: &str| {
            ipmp_tests::topology::cable(ns, ifname, &switch, port)
        };
        let mut config =
            format!("[[group]]\nname = \"bench0\"\ndata_addresses = [\"{GROUP_SRC}/24\"]\n");
        for i in 0..3 {
            cable(&host, &format!("m{i}"), &format!("pm{i}"))?;
            config.push_str(&format!("\n[[group.member]]\ninterface = \"m{i}\"\n"));
        }
        cable(&host, "plain0", "pplain")?;
        host.ip(&format!("addr add {PLAIN_SRC}/24 dev plain0"))?;
        cable(&peer, "eth0", "ppeer")?;
        peer.ip(&format!("addr add {GROUP_DST}/24 dev eth0"))?;
        peer.ip(&format!("addr add {PLAIN_DST}/24 dev eth0"))?;
        peer.ip(&format!("addr add {ONE_HOP_DST}/24 dev eth0"))?;
        host.ip(&format!("addr add {ONE_HOP_SRC}/32 dev lo"))?;
        let nexthops: Vec<String> = (0..3).map(|i| format!("nexthop dev m{i}")).collect();
        host.ip(&format!(
            "route add {ONE_HOP_DST}/32 src {ONE_HOP_SRC} {}",
            nexthops.join(" ")
        ))?;
        let daemon = Daemon::start(&host, &config)?;
        daemon.wait_group("ok")?;
        Ok(Bench {
            host,
            _switch: switch,
            peer,
            _daemon: daemon,
        })
    }

    /// 64-byte UDP frames from `src` to `dst`, received per second.
    fn udp(&self, src: &str, dst: &str) -> Result<f64> {
        self.iperf(
            src,
            dst,
            &["-u", "-b", "0", "-l", UDP_PAYLOAD_64B_FRAME],
            |end| {
                let sum = &end["sum"];
                let received = sum["packets"].as_f64()? - sum["lost_packets"].as_f64()?;
                Some(received / sum["seconds"].as_f64()?)
            },
        )
    }

    /// Runs `measure` while the baseline programs stand in front of ipmp's
    /// (group egress redirects to m0, m0's egress does nothing).
    fn floor(&self, measure: impl FnOnce() -> Result<f64>) -> Result<f64> {
        let mut holder = self
            .host
            .command(&ipmp_tests::daemon::bin("ipmp-bench").to_string_lossy())
            .args(["floor", "bench0", "m0", GROUP_DST])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting ipmp-bench floor")?;
        let mut line = String::new();
        let read = holder
            .stdout
            .take()
            .map(|out| BufReader::new(out).read_line(&mut line));
        let figure = match read {
            Some(Ok(_)) if line.trim() == "ready" => measure(),
            _ => Err(anyhow::anyhow!(
                "ipmp-bench floor did not attach its programs (its own error is on stderr)"
            )),
        };
        // Closing its standard input ends it, and its attachments with it.
        drop(holder.stdin.take());
        let _ = holder.wait();
        figure
    }

    /// One iperf3 run from `src` to `dst` with `args`; `read` takes the
    /// figure from the JSON report's `end`.
    fn iperf(
        &self,
        src: &str,
        dst: &str,
        args: &[&str],
        read: impl Fn(&Value) -> Option<f64>,
    ) -> Result<f64> {
        let mut server = self
            .peer
            .command("iperf3")
            .args(["-s", "-1", "-B", dst])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting iperf3 -s")?;
        // iperf3 -s listens within milliseconds; the client retries nothing.
        thread::sleep(Duration::from_millis(200));
        let out = self
            .host
            .command("iperf3")
            .args(["-c", dst, "-B", src, "-t", &SECONDS.to_string(), "-J"])
            .args(args)
            .output();
        let _ = server.kill();
        let _ = server.wait();
        let out = out.context("running iperf3 -c")?;
        ensure!(
            out.status.success(),
            "iperf3 from {src} to {dst} failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let report: Value = serde_json::from_slice(&out.stdout).context("iperf3's JSON")?;
        read(&report["end"])
            .with_context(|| format!("no figure in iperf3's report: {}", report["end"]))
    }
}
