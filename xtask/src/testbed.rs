//! `cargo xtask testbed up|down`: the tutorial's network, left running for
//! trying ipmpd by hand.
use anyhow::Result;
use ipmp_tests::{config::IpmpToml, netns::Netns, topology::Topology};

pub const PREFIX: &str = "ipmp";

/// The tutorial's configuration without test addresses. Its IPv6 data
/// address makes the members probe over IPv6 from their link-local
/// addresses (as in.mpathd does), so a member whose link comes back is
/// repaired after 10 acknowledged probes: 2 s of FDT instead of the
/// default 10 s keeps the demo short.
pub fn tutorial_config() -> String {
    IpmpToml::tutorial()
        .failback(true)
        .fdt_ms(2000)
        .dual_stack()
        .render()
}

/// The tutorial's probe-based configuration: a test address per member.
/// (The tutorial keeps in.mpathd's default FDT of 10 s; 2 s keeps the demo
/// short.) The router becomes the probe target through the default route.
pub fn probe_group(fdt_ms: u64) -> IpmpToml {
    IpmpToml::tutorial()
        .fdt_ms(fdt_ms)
        .dual_stack()
        .test_addresses()
}

/// [`probe_group`] as TOML, with the `key = value` lines of `extra_daemon`
/// in its `[daemon]` table.
pub fn probe_config(fdt_ms: u64, extra_daemon: &str) -> String {
    extra_daemon
        .lines()
        .filter_map(|line| line.split_once(" = "))
        .fold(probe_group(fdt_ms), |c, (key, value)| c.daemon(key, value))
        .render()
}

pub fn up() -> Result<()> {
    down()?;
    Topology::build(PREFIX)?.persist();
    let dir = crate::workspace().join("target/testbed");
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("ipmp.toml");
    std::fs::write(&config, tutorial_config())?;
    let bin = crate::bin_dir();
    println!(
        "Testbed up: namespaces {}",
        Topology::names(PREFIX).join(" ")
    );
    println!("Run ipmpd in hivemind (nsenter keeps bpffs visible, unlike ip netns exec):");
    println!(
        "  nsenter --net=/run/netns/{PREFIX}-hivemind {}/ipmpd --config {} --socket /run/ipmp/testbed.sock",
        bin.display(),
        config.display()
    );
    println!(
        "  {}/ipmpctl --socket /run/ipmp/testbed.sock stat -i",
        bin.display()
    );
    println!("Pull cable 1: ip -n {PREFIX}-switchA link set p-e1000g0 down");
    println!("Remove it all: cargo xtask testbed down");
    Ok(())
}

pub fn down() -> Result<()> {
    for name in Topology::names(PREFIX) {
        Netns::delete(&name);
    }
    Ok(())
}
