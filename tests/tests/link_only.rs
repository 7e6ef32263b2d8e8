//! A link-only group (members without test addresses, the tutorial's
//! setup): asking for next hops must not move peers' entries for the data
//! address off the member it is bound to.
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use ipmp_tests::{
    daemon::Daemon,
    netns::join,
    topology::{DATA_V4, MEMBERS, PEER_V4},
    traffic::{mac_string, Sniffer},
};

/// 240 flows leave through every member; each member asks for the peer
/// itself. No ARP frame the peer sees names the data address with another
/// member's MAC, and the peer's entry for it stays on the bound member.
#[test]
fn asking_for_next_hops_keeps_the_peers_entry_on_the_bound_member() -> Result<()> {
    let (t, d) = Daemon::start_tutorial("lo")?;
    let bound = d.stat("-a")?[0]["inbound"]
        .as_str()
        .context("no inbound member")?
        .to_string();
    // The peer learns the binding by asking (answered in XDP by `bound`).
    let bound_mac = t.peer_learns(DATA_V4, &bound)?;
    for m in MEMBERS {
        t.host.ip(&format!("neigh flush dev {m}"))?;
    }

    let data: [u8; 4] = DATA_V4.parse::<std::net::Ipv4Addr>()?.octets();
    let sniff = t.peer.spawn_ready("sniffer", move |ready| {
        let sniffer = Sniffer::open("eth0")?;
        ready.send(()).ok();
        let until = Instant::now() + Duration::from_secs(3);
        let mut senders = Vec::new();
        let mut buf = [0u8; 2048];
        while Instant::now() < until {
            let Some(n) = sniffer.next_frame(&mut buf) else {
                continue;
            };
            // ARP: sender hardware address at 22, sender IP at 28.
            if n >= 42 && buf[12..14] == [0x08, 0x06] && buf[28..32] == data {
                let mut sha = [0u8; 6];
                sha.copy_from_slice(&buf[22..28]);
                senders.push(mac_string(&sha));
            }
        }
        sniffer.ensure_complete()?;
        Ok(senders)
    })?;
    let flows = t.flows_by_member((DATA_V4, PEER_V4), 20000..20240)?;
    let senders = join(sniff)?;
    for m in MEMBERS {
        ensure!(
            flows.values().any(|f| f == m),
            "no flow left through {m}: {flows:?}"
        );
    }
    let wrong: Vec<&String> = senders.iter().filter(|s| **s != bound_mac).collect();
    ensure!(
        wrong.is_empty(),
        "ARP frames named {DATA_V4} with {wrong:?}; it is bound to {bound} ({bound_mac})"
    );
    let now = t.peer_neighbour(DATA_V4)?;
    ensure!(
        now.as_deref() == Some(&*bound_mac),
        "the peer's entry for {DATA_V4} moved to {now:?}; it is bound to {bound} ({bound_mac})"
    );
    Ok(())
}
