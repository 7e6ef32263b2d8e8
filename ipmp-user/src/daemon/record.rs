//! The member record: what ipmpd decided about a member, kept in the
//! member's slot of the pinned `MEMBERS` map (`ipmp_common::Member`), so
//! that a restarted ipmpd (also after `kill -9`) starts from it and logs
//! no transition that did not happen (README, "What ipmpd does to the
//! host", Member record).
use ipmp_common::{
    Member, RECORD_ACTIVE, RECORD_FAILED, RECORD_GROUP_FAILURE_ANNOUNCED, RECORD_HELD_BACK,
    RECORD_LINK_DOWN, RECORD_LINK_UP, RECORD_OFFLINE, RECORD_PROBE_FAILED, RECORD_SYSCTLS_SAVED,
    SAVED_SYSCTLS,
};

use crate::{model::LinkState, policy::group::Kept};

/// The decisions in a record.
pub fn kept(record: u32) -> Kept {
    let has = |bit| record & bit != 0;
    Kept {
        offline: has(RECORD_OFFLINE),
        probe_failed: has(RECORD_PROBE_FAILED),
        link: if has(RECORD_LINK_UP) {
            LinkState::Up
        } else if has(RECORD_LINK_DOWN) {
            LinkState::Down
        } else {
            LinkState::Unknown
        },
        held_back: has(RECORD_HELD_BACK),
        failure_announced: has(RECORD_GROUP_FAILURE_ANNOUNCED),
        active: has(RECORD_ACTIVE),
        failed: has(RECORD_FAILED),
    }
}

/// The record of `kept`, with `sysctls_saved` when the member's original
/// sysctls are in the record.
pub fn bits(kept: &Kept, sysctls_saved: bool) -> u32 {
    [
        (kept.offline, RECORD_OFFLINE),
        (kept.probe_failed, RECORD_PROBE_FAILED),
        (kept.link == LinkState::Up, RECORD_LINK_UP),
        (kept.link == LinkState::Down, RECORD_LINK_DOWN),
        (kept.held_back, RECORD_HELD_BACK),
        (kept.failure_announced, RECORD_GROUP_FAILURE_ANNOUNCED),
        (kept.active, RECORD_ACTIVE),
        (kept.failed, RECORD_FAILED),
        (sysctls_saved, RECORD_SYSCTLS_SAVED),
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .fold(0, |bits, (_, bit)| bits | bit)
}

/// The member's sysctls as they were before ipmpd changed them, if the
/// record holds them.
pub fn saved_sysctls(m: &Member) -> Option<[u8; SAVED_SYSCTLS]> {
    (m.record & RECORD_SYSCTLS_SAVED != 0).then_some(m.saved_sysctls)
}

/// The interface name stored in a record.
pub fn name(m: &Member) -> String {
    let len = m.name.iter().position(|&b| b == 0).unwrap_or(m.name.len());
    String::from_utf8_lossy(&m.name[..len]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_decision_survives_the_round_trip() {
        for link in [LinkState::Up, LinkState::Down, LinkState::Unknown] {
            for flags in 0..64u32 {
                let k = Kept {
                    offline: flags & 1 != 0,
                    probe_failed: flags & 2 != 0,
                    link,
                    held_back: flags & 4 != 0,
                    failure_announced: flags & 8 != 0,
                    active: flags & 16 != 0,
                    failed: flags & 32 != 0,
                };
                assert_eq!(kept(bits(&k, false)), k);
            }
        }
    }

    #[test]
    fn saved_sysctls_count_only_when_marked() {
        let mut m = Member {
            saved_sysctls: [1, 2, 0, 0, 1, 1],
            ..Member::default()
        };
        assert_eq!(saved_sysctls(&m), None);
        m.record = bits(&kept(0), true);
        assert_eq!(saved_sysctls(&m), Some([1, 2, 0, 0, 1, 1]));
    }
}
