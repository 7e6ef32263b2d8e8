//! The IPMP tutorial's network in namespaces: host `hivemind` with members
//! e1000g0 and e1000g1 (cables 1 and 2 to switch A) and rge0 (cable 3 to
//! switch B), cable 4 between the switches, a router and a peer on switch
//! B, and a remote host behind the router.
use std::collections::HashMap;

use anyhow::{ensure, Context, Result};

use crate::{
    netns::Netns,
    traffic::{flows_by_mac, mac_string, port_through, FlowMacs, Pace, Stream},
};

pub const DATA_V4: &str = "192.0.2.200";
pub const DATA_V6: &str = "2001:db8::200";
pub const ROUTER_V4: &str = "192.0.2.1";
pub const PEER_V4: &str = "192.0.2.10";
pub const PEER_V6: &str = "2001:db8::10";
pub const REMOTE_V4: &str = "198.51.100.10";
pub const MEMBERS: [&str; 3] = ["e1000g0", "e1000g1", "rge0"];

pub struct Topology {
    pub host: Netns,
    pub switch_a: Netns,
    pub switch_b: Netns,
    pub router: Netns,
    pub peer: Netns,
    pub remote: Netns,
}

/// Namespace names of a topology: `<prefix>-<role>`.
pub struct Names {
    pub prefix: String,
}

impl Names {
    pub fn role(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }
    pub const ROLES: [&'static str; 6] =
        ["hivemind", "switchA", "switchB", "router", "peer", "remote"];
}

impl Topology {
    /// Builds the tutorial network under namespaces named `<prefix>-<role>`.
    pub fn build(prefix: &str) -> Result<Topology> {
        let n = Names {
            prefix: prefix.to_string(),
        };
        let t = Topology {
            host: Netns::create(&n.role("hivemind"))?,
            switch_a: Netns::create(&n.role("switchA"))?,
            switch_b: Netns::create(&n.role("switchB"))?,
            router: Netns::create(&n.role("router"))?,
            peer: Netns::create(&n.role("peer"))?,
            remote: Netns::create(&n.role("remote"))?,
        };
        for sw in [&t.switch_a, &t.switch_b] {
            // A switch forwards frames and answers nothing: without this
            // its bridge would answer IPv6 probes (ff02::1) from its
            // link-local address, and a cut between the switches would
            // go unseen.
            sw.sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
            sw.sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
            sw.ip("link add br0 type bridge")?;
            sw.ip("link set br0 up")?;
        }
        // The router and the hosts stand for machines that have been up
        // for long: their link-local addresses skip duplicate address
        // detection. Else, for the first second, the host's neighbour
        // solicitations for them go unanswered and the kernel holds the
        // first IPv6 probes in its queue; their replies then read as
        // round trips of up to a second and raise the FDT. The members'
        // own addresses (ipmpd's business) still go through it.
        for ns in [&t.router, &t.peer, &t.remote] {
            ns.sysctl("net.ipv6.conf.all.accept_dad", "0")?;
            ns.sysctl("net.ipv6.conf.default.accept_dad", "0")?;
        }
        // Cables 1-3: the members.
        t.cable(&t.host, "e1000g0", &t.switch_a)?;
        t.cable(&t.host, "e1000g1", &t.switch_a)?;
        t.cable(&t.host, "rge0", &t.switch_b)?;
        // Cable 4 between the switches.
        t.switch_a.ip(&format!(
            "link add c4 type veth peer name c4 netns {}",
            t.switch_b.name
        ))?;
        for sw in [&t.switch_a, &t.switch_b] {
            sw.ip("link set c4 master br0 up")?;
        }
        // Router: 192.0.2.1 on switch B, 198.51.100.1 towards the remote host.
        t.cable(&t.router, "eth0", &t.switch_b)?;
        t.router.ip("addr add 192.0.2.1/24 dev eth0")?;
        t.router.ip("addr add 2001:db8::1/64 dev eth0 nodad")?;
        t.router.ip(&format!(
            "link add eth1 type veth peer name eth0 netns {}",
            t.remote.name
        ))?;
        t.router.ip("addr add 198.51.100.1/24 dev eth1")?;
        t.router.ip("link set eth1 up")?;
        t.router.sysctl("net.ipv4.ip_forward", "1")?;
        t.router.sysctl("net.ipv4.conf.all.proxy_arp", "0")?;
        t.remote.ip("addr add 198.51.100.10/24 dev eth0")?;
        t.remote.ip("link set eth0 up")?;
        t.remote.ip("route add default via 198.51.100.1")?;
        // An on-link peer on switch B.
        t.cable(&t.peer, "eth0", &t.switch_b)?;
        t.peer.ip("addr add 192.0.2.10/24 dev eth0")?;
        t.peer.ip("addr add 2001:db8::10/64 dev eth0 nodad")?;
        Ok(t)
    }

    /// A cable from `ifname` in `ns` to a new port of `switch`'s bridge; the
    /// port is named `p-<ifname>` (or `p-<ns role>` for non-host ends).
    fn cable(&self, ns: &Netns, ifname: &str, switch: &Netns) -> Result<()> {
        cable(ns, ifname, switch, &port_name(ns, ifname, &self.host))
    }

    /// The switch a member's cable goes to.
    pub fn switch_of(&self, member: &str) -> &Netns {
        if member == "rge0" {
            &self.switch_b
        } else {
            &self.switch_a
        }
    }

    /// Pulls a member's cable: the member loses carrier.
    pub fn pull_cable(&self, member: &str) -> Result<()> {
        self.switch_of(member)
            .ip(&format!("link set p-{member} down"))
            .map(drop)
    }

    /// Pulls a member's cable with one ioctl (no `ip` process to start or
    /// end) and calls `then` the moment it returned: what is measured from
    /// there is the cut's aftermath alone.
    pub fn pull_cable_then<T: Send + 'static>(
        &self,
        member: &str,
        then: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        admin_down_then(self.switch_of(member), format!("p-{member}"), then)
    }

    /// Cuts cable 4, between the switches, as [`Self::pull_cable_then`]
    /// pulls a member's: only probes can tell.
    pub fn cut_cable4_then<T: Send + 'static>(
        &self,
        then: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        admin_down_then(&self.switch_a, "c4".to_string(), then)
    }

    pub fn plug_cable(&self, member: &str) -> Result<()> {
        self.switch_of(member)
            .ip(&format!("link set p-{member} up"))
            .map(drop)
    }

    /// Adds a member cable to switch A after the fact (a new NIC).
    pub fn add_member_cable(&self, member: &str) -> Result<()> {
        self.cable(&self.host, member, &self.switch_a)
    }

    /// Flow (UDP source port in `ports`) to the member it left through, as
    /// the peer saw it, for flows from data address `src` to the peer's
    /// `dst` (port 9000).
    pub fn flows_by_member(
        &self,
        (src, dst): (&str, &str),
        ports: std::ops::Range<u16>,
    ) -> Result<HashMap<u16, String>> {
        let macs = flows_by_mac(&self.host, src, ports, &self.peer, "eth0", dst, 9000)?;
        // Members that exist now (a test may have removed one).
        let names: HashMap<String, &str> = MEMBERS
            .iter()
            .filter_map(|m| Some((self.mac(m).ok()?, *m)))
            .collect();
        macs.iter()
            .map(|(port, mac)| {
                let member = names
                    .get(&mac_string(mac))
                    .with_context(|| format!("flow {port} came from unknown MAC"))?;
                Ok((*port, member.to_string()))
            })
            .collect()
    }

    /// Starts `count` datagrams, one every `interval` (from SCHED_FIFO
    /// threads when `realtime`), from the data address to the peer's port
    /// 9000, on a flow (source port among `ports`) that leaves through
    /// `member`.
    pub fn stream_through(
        &self,
        member: &str,
        ports: std::ops::Range<u16>,
        interval: std::time::Duration,
        count: u32,
        realtime: bool,
    ) -> Result<Stream> {
        let sport = port_through(
            &self.host,
            DATA_V4,
            ports,
            &self.peer,
            (PEER_V4, 9000),
            &self.mac(member)?,
        )?;
        let pace = Pace {
            interval,
            count,
            realtime,
        };
        Stream::spawn(
            (&self.host, DATA_V4, sport),
            (&self.peer, PEER_V4, 9000),
            pace,
        )
    }

    /// The peer's neighbour entry for `address`: its MAC, if it has one.
    pub fn peer_neighbour(&self, address: &str) -> Result<Option<String>> {
        let out = self.peer.ip(&format!("neigh show {address} dev eth0"))?;
        let words: Vec<&str> = out.split_whitespace().collect();
        Ok(words
            .iter()
            .position(|w| *w == "lladdr")
            .and_then(|i| words.get(i + 1))
            .map(|m| m.to_string()))
    }

    /// The peer asks for data address `address` (one ping) and learns
    /// `member`'s MAC for it, the member it is bound to; returns the MAC.
    pub fn peer_learns(&self, address: &str, member: &str) -> Result<String> {
        let mac = self.mac(member)?;
        let out = self
            .peer
            .command("ping")
            .args(["-c", "1", "-W", "2", address])
            .output()?;
        ensure!(out.status.success(), "the peer cannot reach {address}");
        ensure!(
            self.peer_neighbour(address)?.as_deref() == Some(&*mac),
            "the peer did not learn {member}'s MAC for {address}"
        );
        Ok(mac)
    }

    pub fn mac(&self, member: &str) -> Result<String> {
        let out = self.host.ip(&format!("-br link show {member}"))?;
        Ok(out
            .split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_string())
    }

    /// Sends one datagram per source port from the data address to the
    /// peer and returns the source MAC with which each arrived.
    pub fn flows_to_peer(&self, ports: std::ops::Range<u16>) -> Result<FlowMacs> {
        flows_by_mac(
            &self.host, DATA_V4, ports, &self.peer, "eth0", PEER_V4, 9000,
        )
    }

    /// Leaves the namespaces in place (the testbed).
    pub fn persist(self) {
        for ns in [
            self.host,
            self.switch_a,
            self.switch_b,
            self.router,
            self.peer,
            self.remote,
        ] {
            ns.persist();
        }
    }

    /// Namespace names of the topology, for tearing down one left behind.
    pub fn names(prefix: &str) -> Vec<String> {
        let n = Names {
            prefix: prefix.to_string(),
        };
        Names::ROLES.iter().map(|r| n.role(r)).collect()
    }
}

/// Sets `ifname` in `ns` down with one ioctl and calls `then` the moment
/// it returned.
fn admin_down_then<T: Send + 'static>(
    ns: &Netns,
    ifname: String,
    then: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    ns.enter(move || {
        set_admin_down(&ifname)?;
        Ok(then())
    })
}

/// Clears IFF_UP on `ifname` of the calling thread's namespace.
fn set_admin_down(ifname: &str) -> Result<()> {
    // SAFETY: plain socket(2); closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    anyhow::ensure!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: a zeroed ifreq is valid; the name fits (checked).
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    anyhow::ensure!(
        ifname.len() < req.ifr_name.len(),
        "interface name {ifname} too long"
    );
    for (d, s) in req.ifr_name.iter_mut().zip(ifname.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: valid ifreq for both ioctls; the union's flags member is the
    // one SIOC[GS]IFFLAGS use.
    let result = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            req.ifr_ifru.ifru_flags &= !(libc::IFF_UP as libc::c_short);
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
    };
    // SAFETY: we own fd.
    unsafe { libc::close(fd) };
    result.with_context(|| format!("setting {ifname} down"))
}

/// A cable from `ifname` in `ns` to `port`, a new port of the bridge br0
/// in `switch`; both ends up.
pub fn cable(ns: &Netns, ifname: &str, switch: &Netns, port: &str) -> Result<()> {
    ns.ip(&format!(
        "link add {ifname} type veth peer name {port} netns {}",
        switch.name
    ))?;
    switch.ip(&format!("link set {port} master br0 up"))?;
    ns.ip(&format!("link set {ifname} up"))?;
    Ok(())
}

fn port_name(ns: &Netns, ifname: &str, host: &Netns) -> String {
    if ns.name == host.name {
        format!("p-{ifname}")
    } else {
        let role = ns.name.rsplit('-').next().unwrap_or("x");
        format!("p-{role}")
    }
}
