//! The bench's table: the figures of results.json, each with its goal (the
//! project's speed and memory goals) beside it.
use serde_json::Value;

/// Where a row's figure comes from in results.json (JSON pointers).
enum Figure {
    At(&'static str),
    /// The first figure over the second, measured in the same run.
    Ratio(&'static str, &'static str),
}

struct Row {
    measure: &'static str,
    figure: Figure,
    unit: &'static str,
    goal: &'static str,
}

const fn row(
    measure: &'static str,
    at: &'static str,
    unit: &'static str,
    goal: &'static str,
) -> Row {
    Row {
        measure,
        figure: Figure::At(at),
        unit,
        goal,
    }
}

const fn ratio(
    measure: &'static str,
    of: &'static str,
    to: &'static str,
    goal: &'static str,
) -> Row {
    Row {
        measure,
        figure: Figure::Ratio(of, to),
        unit: "x",
        goal,
    }
}

const ROWS: &[Row] = &[
    row("empty TC program", "/programs/empty_tc_ns", "ns", ""),
    row(
        "egress program (parse, hash, link check, redirect)",
        "/programs/egress_ns",
        "ns",
        "",
    ),
    ratio(
        "  egress / empty TC",
        "/programs/egress_ns",
        "/programs/empty_tc_ns",
        "<= 2",
    ),
    row(
        "  the same, link check by helper call (kernels before 6.2)",
        "/programs/egress_probe_read_ns",
        "ns",
        "",
    ),
    row(
        "TC program that only redirects (next hop)",
        "/programs/redirect_only_tc_ns",
        "ns",
        "",
    ),
    row("empty XDP program", "/programs/empty_xdp_ns", "ns", ""),
    row(
        "member XDP program, passed data packet",
        "/programs/member_xdp_pass_ns",
        "ns",
        "",
    ),
    ratio(
        "  member XDP pass / empty XDP",
        "/programs/member_xdp_pass_ns",
        "/programs/empty_xdp_ns",
        "<= 2",
    ),
    row(
        "empty XDP program, one run per call (median)",
        "/programs/empty_xdp_single_ns",
        "ns",
        "",
    ),
    row(
        "member XDP, answered echo (XDP_TX), one run",
        "/programs/member_xdp_echo_answer_ns",
        "ns",
        "",
    ),
    row(
        "member XDP, answered ARP request, one run",
        "/programs/member_xdp_arp_answer_ns",
        "ns",
        "",
    ),
    row(
        "TCP through the group / plain path (median of 7)",
        "/throughput/tcp_gbit_s/ratio/median",
        "",
        ">= 0.95",
    ),
    row(
        "64-byte UDP received/s, group / plain (median of 7)",
        "/throughput/udp_64b_pps/ratio/median",
        "",
        ">= 0.95",
    ),
    row(
        "  the floor: redirect-only programs, same hops / plain",
        "/throughput/udp_64b_pps/floor_ratio/median",
        "",
        "",
    ),
    row(
        "  one hop: the kernel's ECMP route, same members / plain",
        "/throughput/udp_64b_pps/one_hop_ratio/median",
        "",
        "",
    ),
    row(
        "flows of surviving members moved on a failure",
        "/flow_stability/worst_surviving_flows_moved_on_failure",
        "",
        "0",
    ),
    row(
        "flows moved on a repair (worst share)",
        "/flow_stability/worst_moved_on_repair_fraction",
        "",
        "<= 1/N + 0.02",
    ),
    row(
        "flows back on their member after fail+repair (least)",
        "/flow_stability/least_back_on_first_member_fraction",
        "",
        "",
    ),
    row(
        "kill -9 and restart: datagrams lost (worst of 3)",
        "/restart/worst_lost",
        "",
        "0",
    ),
    row(
        "carrier cut to peer's neighbour entry moved, median",
        "/inbound_failover/median_neighbour_moved_ms",
        "ms",
        "",
    ),
    row(
        "carrier cut to peer's neighbour entry moved, worst",
        "/inbound_failover/worst_neighbour_moved_ms",
        "ms",
        "",
    ),
    row(
        "inbound loss window on carrier cut, worst",
        "/inbound_failover/worst_loss_ms",
        "ms",
        "",
    ),
    row(
        "probes: cut to failure at FDT 1000 ms (worst of 3)",
        "/probe_detection/fdt_1000_ms/worst_ms",
        "ms",
        "<= 1100",
    ),
    row(
        "probes: cut to failure at FDT 200 ms (worst of 3)",
        "/probe_detection/fdt_200_ms/worst_ms",
        "ms",
        "<= 220",
    ),
    row(
        "probes: cut to failure at FDT 50 ms (worst of 3)",
        "/probe_detection/fdt_50_ms/worst_ms",
        "ms",
        "<= 55",
    ),
    row(
        "probes: false failures at FDT 50 ms under load",
        "/probe_soak/false_failures",
        "",
        "0 (10 min: IPMP_BENCH_SOAK_SECS=600)",
    ),
    row("  seconds of that soak", "/probe_soak/seconds", "s", ""),
    row(
        "ipmpd RSS, 3 members probing at the default FDT",
        "/daemon_idle/members_3_probing/rss_mb",
        "MB",
        "<= 30",
    ),
    row(
        "ipmpd idle CPU, 3 members probing at the default FDT",
        "/daemon_idle/members_3_probing/cpu_percent",
        "%",
        "",
    ),
    row(
        "ipmpd RSS, 64 link-only members",
        "/daemon_idle/members_64_link_only/rss_mb",
        "MB",
        "<= 30",
    ),
    row(
        "ipmpd idle CPU, 64 link-only members",
        "/daemon_idle/members_64_link_only/cpu_percent",
        "%",
        "<= 0.5",
    ),
    row(
        "metrics scrape, 3 members (mean of 50)",
        "/metrics_scrape/members_3/mean_ms",
        "ms",
        "",
    ),
    row(
        "metrics scrape, 64 members (mean of 50)",
        "/metrics_scrape/members_64/mean_ms",
        "ms",
        "",
    ),
    row(
        "metrics scrape, 64 members (worst of 50)",
        "/metrics_scrape/members_64/max_ms",
        "ms",
        "bounded",
    ),
];

/// Prints the table; a figure missing from `results` shows as NaN.
pub fn print(results: &Value) {
    let at = |p: &str| {
        results
            .pointer(p)
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN)
    };
    println!("{:<56} {:>10}  goal", "measure", "value");
    for r in ROWS {
        let value = match r.figure {
            Figure::At(p) => at(p),
            Figure::Ratio(of, to) => at(of) / at(to),
        };
        println!("{:<56} {value:>10.3} {:<3} {}", r.measure, r.unit, r.goal);
    }
}
