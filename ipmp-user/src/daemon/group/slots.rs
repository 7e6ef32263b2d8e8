//! Which slot of the dataplane each member takes, and which member each
//! data address is bound to, when a group starts or is reloaded. Pure: the
//! callers read and write the pins.
use std::collections::HashMap;

use ipmp_common::{data_address_key, Member, MAX_MEMBERS};
use ipnet::IpNet;

use crate::{config::GroupConfig, daemon::record};

/// Keeps the slots a previous ipmpd gave to members still configured (so
/// the adopted flow table stays valid); new members get the free slots,
/// lowest first, in configuration order.
pub(super) fn assign_slots(pinned: &[(u8, Member)], config: &GroupConfig) -> HashMap<String, u8> {
    let mut slots = HashMap::new();
    for (slot, m) in pinned {
        let name = record::name(m);
        if config.members.iter().any(|c| c.interface == name) {
            slots.insert(name, *slot);
        }
    }
    let taken: Vec<u8> = slots.values().copied().collect();
    let mut free = (0..MAX_MEMBERS as u8).filter(|s| !taken.contains(s));
    for c in &config.members {
        if !slots.contains_key(&c.interface) {
            slots.insert(
                c.interface.clone(),
                free.next()
                    .expect("config allows at most MAX_MEMBERS members"),
            );
        }
    }
    slots
}

/// The lowest slot that none of `taken` holds, if any is left.
pub(super) fn free_slot(taken: &[u8]) -> Option<u8> {
    (0..MAX_MEMBERS as u8).find(|s| !taken.contains(s))
}

/// The inbound bindings a previous ipmpd left in the pins (`pinned`: data
/// address key and slot), for the data addresses still configured and
/// bound to a member still configured (so a restart moves nothing), in the
/// configuration's order; and the pinned keys no longer configured, which
/// go.
pub(super) fn adopt_bindings(
    pinned: &[([u8; 16], u32)],
    config: &GroupConfig,
    slots: &HashMap<String, u8>,
) -> (Vec<Option<u8>>, Vec<[u8; 16]>) {
    let unconfigured = pinned
        .iter()
        .map(|(key, _)| *key)
        .filter(|key| {
            !config
                .data_addresses
                .iter()
                .any(|a| data_address_key(a.addr()) == *key)
        })
        .collect();
    let bindings = config
        .data_addresses
        .iter()
        .map(|a| {
            let key = data_address_key(a.addr());
            let (_, slot) = pinned.iter().find(|(k, _)| *k == key)?;
            slots.values().find(|&&s| u32::from(s) == *slot).copied()
        })
        .collect();
    (bindings, unconfigured)
}

/// The bindings of the data addresses `new` after a reload: an address
/// that stays keeps its member (`old` and `bindings` go together), a new
/// one is unbound.
pub(super) fn carry_bindings(
    old: &[IpNet],
    bindings: &[Option<u8>],
    new: &[IpNet],
) -> Vec<Option<u8>> {
    let bound: HashMap<IpNet, Option<u8>> =
        old.iter().copied().zip(bindings.iter().copied()).collect();
    new.iter()
        .map(|a| bound.get(a).copied().flatten())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MemberConfig;

    fn group(members: &[&str], addresses: &[&str]) -> GroupConfig {
        GroupConfig {
            name: "ipmp0".into(),
            data_addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            targets: Vec::new(),
            failure_detection_time_ms: None,
            answer_echo: true,
            members: members
                .iter()
                .map(|m| MemberConfig {
                    interface: m.to_string(),
                    test_address: None,
                    standby: false,
                })
                .collect(),
        }
    }

    fn pinned(name: &str) -> Member {
        let mut m = Member::default();
        m.name[..name.len()].copy_from_slice(name.as_bytes());
        m
    }

    #[test]
    fn members_keep_their_pinned_slots_and_new_ones_take_the_lowest_free() {
        let config = group(&["a", "b", "c"], &[]);
        let slots = assign_slots(&[(0, pinned("gone")), (2, pinned("b"))], &config);
        assert_eq!(slots["b"], 2);
        // Slot 0 belonged to a member no longer configured: it is free.
        assert_eq!(slots["a"], 0);
        assert_eq!(slots["c"], 1);
        assert_eq!(slots.len(), 3);
    }

    #[test]
    fn without_pins_slots_follow_the_configuration_order() {
        let slots = assign_slots(&[], &group(&["x", "y"], &[]));
        assert_eq!((slots["x"], slots["y"]), (0, 1));
    }

    #[test]
    fn the_free_slot_is_the_lowest_not_taken() {
        assert_eq!(free_slot(&[]), Some(0));
        assert_eq!(free_slot(&[0, 1, 3]), Some(2));
        let all: Vec<u8> = (0..MAX_MEMBERS as u8).collect();
        assert_eq!(free_slot(&all), None);
    }

    #[test]
    fn pinned_bindings_are_adopted_only_for_configured_addresses_and_members() {
        let config = group(
            &["a", "b"],
            &["192.0.2.1/24", "192.0.2.2/24", "2001:db8::1/64"],
        );
        let slots = HashMap::from([("a".to_string(), 3), ("b".to_string(), 5)]);
        let key = |a: &str| data_address_key(a.parse().unwrap());
        let pins = [
            (key("192.0.2.1"), 5),
            // Bound to a slot no configured member holds.
            (key("192.0.2.2"), 7),
            (key("198.51.100.9"), 3),
        ];
        let (bindings, unconfigured) = adopt_bindings(&pins, &config, &slots);
        assert_eq!(bindings, vec![Some(5), None, None]);
        assert_eq!(unconfigured, vec![key("198.51.100.9")]);
    }

    #[test]
    fn a_reload_keeps_the_bindings_of_addresses_that_stay() {
        let net = |a: &str| a.parse::<IpNet>().unwrap();
        let old = [net("192.0.2.1/24"), net("192.0.2.2/24")];
        let new = [net("192.0.2.3/24"), net("192.0.2.2/24")];
        assert_eq!(
            carry_bindings(&old, &[Some(1), Some(4)], &new),
            vec![None, Some(4)]
        );
        // A changed prefix is another address.
        assert_eq!(
            carry_bindings(&old, &[Some(1), None], &[net("192.0.2.1/25")]),
            vec![None]
        );
    }
}
