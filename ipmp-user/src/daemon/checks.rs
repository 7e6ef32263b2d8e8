//! Checks of a configuration against the system, made before any of it is
//! applied (at start and on reload): what the file alone cannot tell.
use crate::{config::Config, netlink::Netlink};

/// Refuses a group name that already names an interface ipmpd did not
/// make: ipmpd would take it over, put the data addresses on it and
/// delete it at teardown.
pub async fn check_system(nl: &Netlink, config: &Config) -> Result<(), String> {
    let mut problems = Vec::new();
    for g in &config.groups {
        let peer = g.peer_interface();
        let Some(link) = nl.link(&g.name).await.map_err(|e| format!("{e:#}"))? else {
            continue;
        };
        let peer_exists = nl
            .link(&peer)
            .await
            .map_err(|e| format!("{e:#}"))?
            .is_some();
        if !(link.veth && peer_exists) {
            problems.push(format!(
                "group \"{}\": interface {} already exists and is not an IPMP group interface \
                 (ipmpd makes a veth pair {} / {peer}); choose another group name",
                g.name, g.name, g.name
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}
