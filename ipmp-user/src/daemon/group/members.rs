//! The group's members as the daemon knows them: one record each, found by
//! slot (how the daemon addresses a member, and what the dataplane calls
//! it), by interface name or by interface index, and kept in configuration
//! order, which is the order of the policy's member list: the position in
//! that order is what the policy's API takes ([`Members::position`],
//! [`Members::at`]).
use ipmp_common::SAVED_SYSCTLS;
use ipnet::IpNet;

use crate::{model::XdpStatus, netlink::Link};

pub(super) struct MemberRuntime {
    pub name: String,
    pub slot: u8,
    pub test_address: Option<IpNet>,
    /// The kernel's view; `None` while the interface does not exist.
    pub link: Option<Link>,
    /// The policy has heard of this interface (seen, or reported missing):
    /// from then on its arrival is a reappearance.
    pub reported: bool,
    /// Transitions to failed and back to ok, for metrics (kept in the pins).
    pub failures: u64,
    pub repairs: u64,
    /// The member's routing table.
    pub table: u32,
    /// The record bits last written to the member's pinned record.
    pub record: u32,
    /// The member's sysctls before ipmpd first changed them (kept in the
    /// record across restarts, restored at teardown).
    pub saved_sysctls: Option<[u8; SAVED_SYSCTLS]>,
    /// How its XDP program is attached, once it is.
    pub xdp: Option<XdpStatus>,
}

impl MemberRuntime {
    /// The interface's index while it exists.
    pub fn ifindex(&self) -> Option<u32> {
        self.link.as_ref().map(|l| l.index)
    }
}

/// The members, in configuration order, slots unique.
#[derive(Default)]
pub(super) struct Members {
    list: Vec<MemberRuntime>,
}

impl Members {
    /// Adds a member at the end (the policy and the prober add it there
    /// too).
    pub fn push(&mut self, m: MemberRuntime) {
        debug_assert!(self.by_slot(m.slot).is_none(), "slot {} taken", m.slot);
        self.list.push(m);
    }

    /// Takes the member in `slot` out.
    pub fn remove(&mut self, slot: u8) -> MemberRuntime {
        let i = self.position(slot);
        self.list.remove(i)
    }

    pub fn by_slot(&self, slot: u8) -> Option<&MemberRuntime> {
        self.list.iter().find(|m| m.slot == slot)
    }

    /// The member in `slot`, which the caller knows to be taken.
    pub fn get(&self, slot: u8) -> &MemberRuntime {
        &self.list[self.position(slot)]
    }

    pub fn get_mut(&mut self, slot: u8) -> &mut MemberRuntime {
        let i = self.position(slot);
        &mut self.list[i]
    }

    pub fn by_name(&self, name: &str) -> Option<&MemberRuntime> {
        self.list.iter().find(|m| m.name == name)
    }

    /// The member whose interface is `ifindex` now.
    pub fn by_ifindex(&self, ifindex: u32) -> Option<&MemberRuntime> {
        self.list.iter().find(|m| m.ifindex() == Some(ifindex))
    }

    /// The member in `slot`'s name, or "?" if there is none.
    pub fn name_of(&self, slot: u8) -> &str {
        self.by_slot(slot).map_or("?", |m| m.name.as_str())
    }

    /// In configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &MemberRuntime> {
        self.list.iter()
    }

    /// The slots, in configuration order.
    pub fn slots(&self) -> Vec<u8> {
        self.list.iter().map(|m| m.slot).collect()
    }

    /// The position of the member in `slot` in configuration order: the
    /// index the policy's API takes.
    pub fn position(&self, slot: u8) -> usize {
        self.list
            .iter()
            .position(|m| m.slot == slot)
            .unwrap_or_else(|| panic!("no member in slot {slot}"))
    }

    /// The slot of the member at `position` in configuration order (an
    /// index the policy's API gives).
    pub fn at(&self, position: usize) -> u8 {
        self.list[position].slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, slot: u8, ifindex: Option<u32>) -> MemberRuntime {
        MemberRuntime {
            name: name.into(),
            slot,
            test_address: None,
            link: ifindex.map(|index| Link {
                index,
                name: name.into(),
                admin_up: true,
                carrier: true,
                mtu: 1500,
                mac: [0; 6],
                veth: true,
                xdp: None,
                peer: None,
            }),
            reported: false,
            failures: 0,
            repairs: 0,
            table: 0,
            record: 0,
            saved_sysctls: None,
            xdp: None,
        }
    }

    fn members() -> Members {
        let mut ms = Members::default();
        ms.push(member("net1", 2, Some(11)));
        ms.push(member("net0", 0, None));
        ms.push(member("net2", 5, Some(12)));
        ms
    }

    #[test]
    fn members_are_found_by_slot_name_and_interface_index() {
        let ms = members();
        assert_eq!(ms.get(0).name, "net0");
        assert_eq!(ms.by_slot(5).map(|m| m.name.as_str()), Some("net2"));
        assert!(ms.by_slot(1).is_none());
        assert_eq!(ms.by_name("net1").map(|m| m.slot), Some(2));
        assert!(ms.by_name("net9").is_none());
        assert_eq!(ms.by_ifindex(12).map(|m| m.slot), Some(5));
        // A missing interface has no index.
        assert!(ms.by_ifindex(0).is_none());
        assert_eq!(ms.name_of(2), "net1");
        assert_eq!(ms.name_of(7), "?");
    }

    #[test]
    fn positions_follow_the_configuration_order_through_removals() {
        let mut ms = members();
        assert_eq!(ms.slots(), vec![2, 0, 5]);
        assert_eq!((ms.position(2), ms.position(0), ms.position(5)), (0, 1, 2));
        assert_eq!(ms.at(1), 0);
        assert_eq!(ms.remove(2).name, "net1");
        // Later members move up, as in the policy's list.
        assert_eq!((ms.position(0), ms.position(5)), (0, 1));
        assert_eq!(ms.at(1), 5);
        ms.push(member("net3", 2, None));
        assert_eq!(ms.slots(), vec![0, 5, 2]);
        ms.get_mut(2).failures = 4;
        assert_eq!(ms.get(2).failures, 4);
    }

    #[test]
    #[should_panic(expected = "no member in slot 3")]
    fn a_slot_without_a_member_is_a_bug() {
        members().position(3);
    }
}
