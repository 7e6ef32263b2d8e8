//! Inbound binding (Solaris): each data address is received on exactly one
//! active member, the one that answers ARP/ND for it. Addresses are spread
//! so that members' counts differ by at most 1, and a change moves as few
//! addresses as it can: a binding to a member that stays active is kept
//! unless the balance needs it elsewhere.

/// The members (slots) the data addresses are bound to after a change of
/// the active set: `current[i]` is address i's member now (`None`: none),
/// `active` the active members' slots. With no active member nothing is
/// bound.
pub fn bind(current: &[Option<u8>], active: &[u8]) -> Vec<Option<u8>> {
    if active.is_empty() {
        return vec![None; current.len()];
    }
    let mut bound: Vec<Option<u8>> = current
        .iter()
        .map(|m| m.filter(|m| active.contains(m)))
        .collect();
    let load = |bound: &[Option<u8>], slot: u8| bound.iter().filter(|&&m| m == Some(slot)).count();
    // The least loaded active member; ties go to the first in `active`.
    let least = |bound: &[Option<u8>]| {
        *active
            .iter()
            .min_by_key(|&&s| load(bound, s))
            .expect("active is not empty")
    };
    for i in 0..bound.len() {
        if bound[i].is_none() {
            bound[i] = Some(least(&bound));
        }
    }
    loop {
        let most = *active
            .iter()
            .rev()
            .max_by_key(|&&s| load(&bound, s))
            .expect("active is not empty");
        let fewest = least(&bound);
        if load(&bound, most) <= load(&bound, fewest) + 1 {
            return bound;
        }
        // Move the most loaded member's last address.
        let i = bound
            .iter()
            .rposition(|&m| m == Some(most))
            .expect("the most loaded member has an address");
        bound[i] = Some(fewest);
    }
}

#[cfg(test)]
mod tests {
    use super::bind;

    fn counts(bound: &[Option<u8>], active: &[u8]) -> Vec<usize> {
        active
            .iter()
            .map(|&s| bound.iter().filter(|&&m| m == Some(s)).count())
            .collect()
    }

    fn balanced(bound: &[Option<u8>], active: &[u8]) -> bool {
        let c = counts(bound, active);
        c.iter().max().unwrap() - c.iter().min().unwrap() <= 1
    }

    #[test]
    fn two_addresses_over_two_members_go_to_different_members() {
        assert_eq!(bind(&[None, None], &[0, 1]), [Some(0), Some(1)]);
    }

    #[test]
    fn fewer_addresses_than_members_use_the_first_members() {
        assert_eq!(bind(&[None, None], &[0, 1, 2]), [Some(0), Some(1)]);
        assert_eq!(bind(&[None], &[3, 5]), [Some(3)]);
    }

    #[test]
    fn without_an_active_member_nothing_is_bound() {
        assert_eq!(bind(&[Some(0), Some(1)], &[]), [None, None]);
        assert!(bind(&[], &[]).is_empty());
    }

    #[test]
    fn a_failed_members_addresses_move_and_the_others_stay() {
        let before = bind(&[None; 6], &[0, 1, 2]);
        let after = bind(&before, &[0, 2]);
        for (b, a) in before.iter().zip(&after) {
            if *b != Some(1) {
                assert_eq!(a, b, "an address of a surviving member moved");
            } else {
                assert_ne!(*a, Some(1));
            }
        }
        assert!(balanced(&after, &[0, 2]));
    }

    #[test]
    fn a_returning_member_takes_addresses_until_balanced() {
        let during = bind(&[None; 5], &[0, 2]);
        let after = bind(&during, &[0, 1, 2]);
        assert!(balanced(&after, &[0, 1, 2]));
        let moved = during.iter().zip(&after).filter(|(a, b)| a != b).count();
        // 5 addresses are 3 + 2 over two members, 2 + 2 + 1 over three:
        // one move, to the newcomer.
        assert_eq!(moved, 1);
        assert_eq!(counts(&after, &[1]), [1]);
    }

    #[test]
    fn binding_an_already_balanced_set_changes_nothing() {
        let bound = bind(&[None; 7], &[0, 1, 2]);
        assert_eq!(bind(&bound, &[0, 1, 2]), bound);
        assert_eq!(counts(&bound, &[0, 1, 2]), [3, 2, 2]);
    }

    #[test]
    fn new_addresses_go_to_the_least_loaded_member() {
        let bound = bind(&[Some(0), Some(0), Some(1), None], &[0, 1]);
        assert_eq!(bound, [Some(0), Some(0), Some(1), Some(1)]);
    }

    #[test]
    fn any_sequence_of_active_sets_stays_balanced_and_bound_to_active_members() {
        // A small deterministic walk over subsets of 5 members, 9 addresses.
        let mut bound = vec![None; 9];
        let mut state = 0x2545_f491_u32;
        for _ in 0..500 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let active: Vec<u8> = (0..5u8).filter(|s| state >> s & 1 == 1).collect();
            let next = bind(&bound, &active);
            if active.is_empty() {
                assert!(next.iter().all(Option::is_none));
            } else {
                assert!(next.iter().all(|m| m.is_some_and(|m| active.contains(&m))));
                assert!(balanced(&next, &active), "{next:?} over {active:?}");
                // Addresses on members that stayed active move only for
                // balance: no more than the fewest any balanced binding needs
                // (what exceeds the floor, less what may stay at the ceiling).
                let kept = bound
                    .iter()
                    .zip(&next)
                    .filter(|(b, n)| b.is_some_and(|b| active.contains(&b)) && b != n)
                    .count();
                let (floor, ceiling_places) = (9 / active.len(), 9 % active.len());
                let before = counts(&bound, &active);
                let above: usize = before.iter().map(|&c| c.saturating_sub(floor)).sum();
                let over = before.iter().filter(|&&c| c > floor).count();
                let excess = above - over.min(ceiling_places);
                assert!(kept <= excess, "{kept} moved, excess {excess}");
            }
            bound = next;
        }
    }
}
