//! `cargo xtask testbed up|down`: the tutorial's network, left running for
//! trying ipmpd by hand.
use anyhow::Result;
use ipmp_tests::{netns::Netns, topology::Topology};

pub const PREFIX: &str = "ipmp";

/// The tutorial's link-based configuration (no test addresses).
pub const TUTORIAL_CONFIG: &str = r#"[daemon]
failback = true

[[group]]
name = "production0"
data_addresses = ["192.0.2.200/24"]

[[group.member]]
interface = "e1000g0"

[[group.member]]
interface = "e1000g1"

[[group.member]]
interface = "rge0"
"#;

pub fn up() -> Result<()> {
    down()?;
    Topology::build(PREFIX)?.persist();
    let dir = crate::workspace().join("target/testbed");
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("ipmp.toml");
    std::fs::write(&config, TUTORIAL_CONFIG)?;
    let bin = crate::bin_dir();
    println!("Testbed up: namespaces {}", Topology::names(PREFIX).join(" "));
    println!("Run ipmpd in hivemind (nsenter keeps bpffs visible, unlike ip netns exec):");
    println!(
        "  nsenter --net=/run/netns/{PREFIX}-hivemind {}/ipmpd --config {} --socket /run/ipmp/testbed.sock",
        bin.display(),
        config.display()
    );
    println!("  {}/ipmpctl --socket /run/ipmp/testbed.sock stat -i", bin.display());
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
