//! Echo requests to the data addresses (IPv4 and IPv6) answered in XDP on
//! the members, with `answer_echo = false` leaving them to the kernel.
use anyhow::{ensure, Context, Result};
use ipmp_tests::{
    config::IpmpToml,
    daemon::Daemon,
    http::member_sum,
    netns::{unique, Netns},
    topology::{Topology, DATA_V4, DATA_V6, MEMBERS},
};

const METRICS: &str = "127.0.0.1:9477";
const PINGS: usize = 20;

/// The group probes over IPv6 (it has an IPv6 data address); its target is
/// the router's fe80::1 ([`topology`]), so no ff02::1 discovery echo,
/// which the host's other members would take in, is counted as a ping.
fn config(answer_echo: bool) -> String {
    IpmpToml::tutorial()
        .metrics(METRICS)
        .dual_stack()
        .answer_echo(answer_echo)
        .targets(&["fe80::1"])
        .render()
}

/// Echo requests the namespace's kernel answered itself, IPv4 and IPv6.
fn kernel_in_echos(ns: &Netns) -> Result<u64> {
    Ok(kernel_in_echos_v4(ns)? + kernel_in_echos_v6(ns)?)
}

/// From /proc/net/snmp6: one "name value" line per counter.
fn kernel_in_echos_v6(ns: &Netns) -> Result<u64> {
    let snmp6 = ipmp_tests::netns::run(ns.command("cat").arg("/proc/net/snmp6"))?;
    snmp6
        .lines()
        .find_map(|l| l.strip_prefix("Icmp6InEchos"))
        .context("no Icmp6InEchos")?
        .trim()
        .parse()
        .context("Icmp6InEchos")
}

/// From /proc/net/snmp: a header line of names, then one of values.
fn kernel_in_echos_v4(ns: &Netns) -> Result<u64> {
    let snmp = ipmp_tests::netns::run(ns.command("cat").arg("/proc/net/snmp"))?;
    let icmp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Icmp:")).collect();
    let (names, values) = (
        icmp.first().context("no Icmp header")?,
        icmp.get(1).context("no Icmp values")?,
    );
    let column = names
        .split_whitespace()
        .position(|n| n == "InEchos")
        .context("no InEchos")?;
    Ok(values
        .split_whitespace()
        .nth(column)
        .context("short Icmp line")?
        .parse()?)
}

fn answered_in_xdp(t: &Topology) -> Result<f64> {
    member_sum(
        &t.host,
        METRICS,
        "ipmp_echo_requests_answered_total",
        &MEMBERS,
    )
}

/// The tutorial's network with the router at fe80::1 too, and the group
/// (with `answer_echo`) up; then each data address pinged `PINGS` times
/// from the peer. Returns the echo requests the host's kernel had answered
/// before the pings.
fn start_and_ping(answer_echo: bool) -> Result<(Topology, Daemon, u64)> {
    let t = Topology::build(&unique("echo"))?;
    t.router.ip("addr add fe80::1/64 dev eth0 nodad")?;
    let d = Daemon::start(&t.host, &config(answer_echo))?;
    d.wait_group("ok")?;
    let kernel_before = kernel_in_echos(&t.host)?;
    for address in [DATA_V4, DATA_V6] {
        let out = t
            .peer
            .command("ping")
            .args(["-c", &PINGS.to_string(), "-i", "0.05", "-W", "2", address])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(
            text.contains(&format!("{PINGS} received")),
            "pings of {address} went unanswered:\n{text}"
        );
    }
    Ok((t, d, kernel_before))
}

#[test]
fn pings_of_the_data_address_are_answered_in_xdp() -> Result<()> {
    let (t, _d, kernel_before) = start_and_ping(true)?;
    let answered = answered_in_xdp(&t)?;
    ensure!(
        answered >= 2.0 * PINGS as f64,
        "XDP answered {answered} of {} pings",
        2 * PINGS
    );
    ensure!(
        kernel_in_echos(&t.host)? == kernel_before,
        "the host kernel saw the echo requests"
    );
    Ok(())
}

#[test]
fn without_answer_echo_the_kernel_answers() -> Result<()> {
    let (t, _d, kernel_before) = start_and_ping(false)?;
    ensure!(
        answered_in_xdp(&t)? == 0.0,
        "XDP answered although answer_echo = false"
    );
    ensure!(
        kernel_in_echos(&t.host)? >= kernel_before + 2 * PINGS as u64,
        "the kernel did not answer"
    );
    Ok(())
}
