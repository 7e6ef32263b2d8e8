//! The one way the tests write ipmpd's configuration file: a builder that
//! starts from the tutorial's group and renders `ipmp.toml` (the schema is
//! `ipmp::config`):
//! `IpmpToml::tutorial().fdt_ms(2000).targets(&["192.0.2.1"]).test_addresses()`
//! is the tutorial's probe-based group at 2 s, say.
use crate::topology::{DATA_V6, MEMBERS};

/// One TOML table's settings in the order they were first set: each key
/// with its value already written as TOML.
#[derive(Clone, Debug, Default)]
struct Table(Vec<(String, String)>);

impl Table {
    fn set(&mut self, key: &str, value: String) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key.to_string(), value)),
        }
    }

    fn unset(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }

    fn write(&self, out: &mut String) {
        for (key, value) in &self.0 {
            out.push_str(&format!("{key} = {value}\n"));
        }
    }
}

#[derive(Clone, Debug)]
struct Member {
    interface: String,
    settings: Table,
}

/// `ipmp.toml`: a `[daemon]` table (left out while it is empty) and one
/// group, followed by any groups added with [`IpmpToml::also`].
#[derive(Clone, Debug)]
pub struct IpmpToml {
    daemon: Table,
    group: Table,
    members: Vec<Member>,
    others: Vec<IpmpToml>,
}

/// A TOML string.
fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

/// A TOML array of strings.
fn list(items: &[&str]) -> String {
    let items: Vec<String> = items.iter().map(|i| quoted(i)).collect();
    format!("[{}]", items.join(", "))
}

/// The test address the tests give `member`: 192.0.2.201/24, .202 and
/// .203 for the tutorial's members in order, .204 for e1000g2 (the new NIC
/// of `Topology::add_member_cable`).
pub fn test_address(member: &str) -> String {
    let i = MEMBERS
        .iter()
        .chain(&["e1000g2"])
        .position(|m| *m == member)
        .unwrap_or_else(|| panic!("no test address for {member}"));
    format!("192.0.2.{}/24", 201 + i)
}

impl IpmpToml {
    /// The tutorial's group production0: data address 192.0.2.200/24,
    /// every member, link-based detection only, ipmpd's defaults.
    pub fn tutorial() -> IpmpToml {
        let mut group = Table::default();
        group.set("name", quoted("production0"));
        group.set("data_addresses", list(&["192.0.2.200/24"]));
        IpmpToml {
            daemon: Table::default(),
            group,
            members: Vec::new(),
            others: Vec::new(),
        }
        .members(&MEMBERS)
    }

    /// Sets `key` in the `[daemon]` table to `value` (written as TOML).
    pub fn daemon(mut self, key: &str, value: &str) -> Self {
        self.daemon.set(key, value.to_string());
        self
    }

    /// `failure_detection_time_ms` in the `[daemon]` table.
    pub fn fdt_ms(self, fdt_ms: u64) -> Self {
        self.daemon("failure_detection_time_ms", &fdt_ms.to_string())
    }

    /// `metrics_listen` in the `[daemon]` table.
    pub fn metrics(self, listen: &str) -> Self {
        self.daemon("metrics_listen", &quoted(listen))
    }

    /// `failback` in the `[daemon]` table.
    pub fn failback(self, failback: bool) -> Self {
        self.daemon("failback", &failback.to_string())
    }

    /// `xdp_mode` in the `[daemon]` table.
    pub fn xdp_mode(self, mode: &str) -> Self {
        self.daemon("xdp_mode", &quoted(mode))
    }

    /// The group's name.
    pub fn name(mut self, name: &str) -> Self {
        self.group.set("name", quoted(name));
        self
    }

    /// The group's data addresses (with prefix length), in place of
    /// 192.0.2.200/24.
    pub fn data_addresses(mut self, addresses: &[&str]) -> Self {
        self.group.set("data_addresses", list(addresses));
        self
    }

    /// The tutorial's two data addresses, 192.0.2.200/24 and
    /// 2001:db8::200/64: the group probes over IPv6 by itself.
    pub fn dual_stack(self) -> Self {
        self.data_addresses(&["192.0.2.200/24", &format!("{DATA_V6}/64")])
    }

    /// The group's probe targets.
    pub fn targets(mut self, targets: &[&str]) -> Self {
        self.group.set("targets", list(targets));
        self
    }

    /// Whether the members answer echo requests to the data addresses in
    /// XDP.
    pub fn answer_echo(mut self, answer: bool) -> Self {
        self.group.set("answer_echo", answer.to_string());
        self
    }

    /// The group's members, in this order, without settings of their own.
    pub fn members(mut self, members: &[&str]) -> Self {
        self.members = members
            .iter()
            .map(|m| Member {
                interface: m.to_string(),
                settings: Table::default(),
            })
            .collect();
        self
    }

    /// Sets `key` of `member` (one of [`Self::members`]) to `value`
    /// (written as TOML).
    pub fn member(mut self, member: &str, key: &str, value: &str) -> Self {
        self.member_table(member).set(key, value.to_string());
        self
    }

    /// `member`'s test address (with prefix length).
    pub fn test_address(self, member: &str, address: &str) -> Self {
        self.member(member, "test_address", &quoted(address))
    }

    /// `member` without a test address.
    pub fn no_test_address(mut self, member: &str) -> Self {
        self.member_table(member).unset("test_address");
        self
    }

    /// Every member its [`test_address`]: probe-based detection over IPv4.
    pub fn test_addresses(self) -> Self {
        let members: Vec<String> = self.members.iter().map(|m| m.interface.clone()).collect();
        members
            .iter()
            .fold(self, |c, m| c.test_address(m, &test_address(m)))
    }

    /// `member` a standby.
    pub fn standby(self, member: &str) -> Self {
        self.member(member, "standby", "true")
    }

    /// `group` (its `[daemon]` table left out) as a further group.
    pub fn also(mut self, group: IpmpToml) -> Self {
        self.others.push(group);
        self
    }

    fn member_table(&mut self, member: &str) -> &mut Table {
        &mut self
            .members
            .iter_mut()
            .find(|m| m.interface == member)
            .unwrap_or_else(|| panic!("{member} is no member"))
            .settings
    }

    /// The configuration as TOML.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if !self.daemon.0.is_empty() {
            out.push_str("[daemon]\n");
            self.daemon.write(&mut out);
            out.push('\n');
        }
        self.write_group(&mut out);
        for other in &self.others {
            out.push('\n');
            other.write_group(&mut out);
        }
        out
    }

    fn write_group(&self, out: &mut String) {
        out.push_str("[[group]]\n");
        self.group.write(out);
        for m in &self.members {
            out.push_str(&format!(
                "\n[[group.member]]\ninterface = {}\n",
                quoted(&m.interface)
            ));
            m.settings.write(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_probing_group_table_by_table() {
        let toml = IpmpToml::tutorial()
            .fdt_ms(1000)
            .targets(&["192.0.2.1"])
            .members(&["e1000g0", "e1000g2"])
            .test_addresses()
            .standby("e1000g2")
            .render();
        assert_eq!(
            toml,
            "[daemon]\nfailure_detection_time_ms = 1000\n\n\
             [[group]]\nname = \"production0\"\ndata_addresses = [\"192.0.2.200/24\"]\n\
             targets = [\"192.0.2.1\"]\n\n\
             [[group.member]]\ninterface = \"e1000g0\"\ntest_address = \"192.0.2.201/24\"\n\n\
             [[group.member]]\ninterface = \"e1000g2\"\ntest_address = \"192.0.2.204/24\"\n\
             standby = true\n"
        );
    }

    #[test]
    fn a_later_setting_replaces_an_earlier_one_in_place() {
        let toml = IpmpToml::tutorial()
            .members(&["m0"])
            .also(IpmpToml::tutorial().name("backup0").members(&["m1"]))
            .data_addresses(&["192.0.2.100/24"])
            .test_address("m0", "192.0.2.9/24")
            .no_test_address("m0")
            .render();
        assert_eq!(
            toml,
            "[[group]]\nname = \"production0\"\ndata_addresses = [\"192.0.2.100/24\"]\n\n\
             [[group.member]]\ninterface = \"m0\"\n\n\
             [[group]]\nname = \"backup0\"\ndata_addresses = [\"192.0.2.200/24\"]\n\n\
             [[group.member]]\ninterface = \"m1\"\n"
        );
    }
}
