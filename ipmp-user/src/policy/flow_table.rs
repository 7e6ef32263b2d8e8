//! The flow table: which member slot each of the [`FLOW_TABLE_BUCKETS`]
//! buckets sends through (README, "How it works").
//!
//! The next table is computed from the previous one so that as few flows as
//! possible change member:
//! 1. Every active member gets a quota, `buckets / n` or one more; the extra
//!    ones go to the members that already own the most buckets, so balance
//!    costs as few moves as possible.
//! 2. A bucket is *free* when its owner is not active (an orphan) or owns
//!    more than its quota. Members below quota ("receivers") take free
//!    buckets in turns, one at a time, each the first free bucket in its own
//!    pseudo-random preference order over the buckets (as in Maglev). A
//!    member above quota gives buckets away only until it is down to quota.
//!
//! So a leaving member's buckets, and only those, are spread evenly over the
//! others; a joining member takes exactly its quota, from members over
//! theirs; and because every member prefers the same buckets each time, a
//! repaired member tends to get back the buckets it had before it failed.
//! Turns plus preference orders keep a member's buckets scattered over the
//! table rather than in runs.
use ipmp_common::{FlowTable, FLOW_TABLE_BUCKETS, MAX_MEMBERS, NO_MEMBER};

const SLOTS: usize = MAX_MEMBERS as usize;
/// Masks a rank or bucket number to the table; the dataplane masks its hash
/// the same way, which is why the size must be a power of two.
const BUCKET_MASK: u32 = FLOW_TABLE_BUCKETS as u32 - 1;
const _: () = assert!(FLOW_TABLE_BUCKETS.is_power_of_two());
const _: () = assert!(FLOW_TABLE_BUCKETS <= 1 << 16, "ranks and counts are u32");
const _: () = assert!(MAX_MEMBERS <= NO_MEMBER as u32, "a slot must fit a bucket");

/// Buckets to member slots.
type Slots = [u8; FLOW_TABLE_BUCKETS];

/// Next table for `active` (sorted, deduplicated member slots, each <
/// [`MAX_MEMBERS`]), changing as few buckets of `prev` as possible. With no
/// active member every bucket is [`NO_MEMBER`]. Deterministic: the same
/// `prev` and `active` always give the same table.
///
/// Each bucket's backup is where the next table would put it if its owner
/// failed, so when the kernel finds an owner down and sends its flows to
/// the backups, the table ipmpd then writes moves nothing again.
pub fn next_table(prev: &FlowTable, active: &[u8]) -> FlowTable {
    let slots = next_slots(&prev.slots, active);
    let mut table = FlowTable {
        slots,
        ..FlowTable::EMPTY
    };
    let members: Vec<u8> = (0..SLOTS as u8).filter(|s| active.contains(s)).collect();
    table.active[..members.len()].copy_from_slice(&members);
    table.active_count = members.len() as u32;
    for &failed in &members {
        let rest: Vec<u8> = members.iter().copied().filter(|&s| s != failed).collect();
        let without = next_slots(&slots, &rest);
        for ((backup, &owner), &next) in table.backups.iter_mut().zip(&slots).zip(&without) {
            if owner == failed {
                *backup = next;
            }
        }
    }
    table
}

/// The buckets as the kernel sends them once it found `slot` down: its
/// buckets at their backups, the others where they are.
pub fn without(table: &FlowTable, slot: u8) -> Slots {
    let mut slots = table.slots;
    for (s, &backup) in slots.iter_mut().zip(&table.backups) {
        if *s == slot {
            *s = backup;
        }
    }
    slots
}

/// The table to write the moment `slot` is seen down, before the policy
/// runs: what the kernel already does (the buckets of `slot` at their
/// backups), without `slot` in the active list. Buckets that lost their
/// backup get none until [`next_table`] computes new ones (meanwhile the
/// kernel takes any member in service for them). No allocation: this is
/// on ipmpd's fast path.
pub fn fail_over(table: &FlowTable, slot: u8) -> FlowTable {
    let mut next = *table;
    next.slots = without(table, slot);
    for (backup, &owner) in next.backups.iter_mut().zip(&table.slots) {
        if *backup == slot || owner == slot {
            *backup = NO_MEMBER;
        }
    }
    let count = (table.active_count as usize).min(SLOTS);
    let mut kept = 0;
    for i in 0..count {
        if table.active[i] != slot {
            next.active[kept] = table.active[i];
            kept += 1;
        }
    }
    next.active[kept..].fill(NO_MEMBER);
    next.active_count = kept as u32;
    next
}

/// The bucket owners of [`next_table`].
fn next_slots(prev: &Slots, active: &[u8]) -> Slots {
    let mut is_active = [false; SLOTS];
    for &slot in active {
        debug_assert!(
            u32::from(slot) < MAX_MEMBERS,
            "member slot {slot} out of range"
        );
        if let Some(a) = is_active.get_mut(usize::from(slot)) {
            *a = true;
        }
    }
    let members: Vec<usize> = (0..SLOTS).filter(|&s| is_active[s]).collect();
    if members.is_empty() {
        return [NO_MEMBER; FLOW_TABLE_BUCKETS];
    }
    // The active member owning a bucket, if any.
    let owner = |slot: u8| Some(usize::from(slot)).filter(|&s| s < SLOTS && is_active[s]);

    let mut table = *prev;
    let mut count = [0u32; SLOTS];
    for &slot in &table {
        if let Some(s) = owner(slot) {
            count[s] += 1;
        }
    }

    let n = members.len() as u32;
    let (base, extra) = (FLOW_TABLE_BUCKETS as u32 / n, FLOW_TABLE_BUCKETS as u32 % n);
    let mut by_load = members.clone();
    by_load.sort_by_key(|&s| (std::cmp::Reverse(count[s]), s));
    let mut quota = [0u32; SLOTS];
    for (i, &s) in by_load.iter().enumerate() {
        quota[s] = base + u32::from((i as u32) < extra);
    }

    let mut receivers: Vec<Preference> = members
        .iter()
        .filter(|&&s| count[s] < quota[s])
        .map(|&s| Preference::new(s))
        .collect();
    while !receivers.is_empty() {
        receivers.retain_mut(|r| {
            // Buckets skipped here never become free later (orphans only get
            // taken, and an owner only shrinks towards its quota), and free
            // buckets are as many as the receivers' deficits, so a receiver
            // below quota always finds one before the end of its order.
            while let Some(bucket) = r.next() {
                let free = match owner(table[bucket]) {
                    None => true,
                    Some(o) => count[o] > quota[o],
                };
                if free {
                    if let Some(o) = owner(table[bucket]) {
                        count[o] -= 1;
                    }
                    table[bucket] = r.slot as u8;
                    count[r.slot] += 1;
                    break;
                }
            }
            count[r.slot] < quota[r.slot]
        });
    }
    table
}

/// Bucket counts per slot (index = slot), for metrics and tests. Buckets
/// holding [`NO_MEMBER`] (or any value that is no slot) are not counted.
pub fn bucket_counts(table: &FlowTable) -> [u32; SLOTS] {
    let mut count = [0u32; SLOTS];
    for &slot in &table.slots {
        if let Some(c) = count.get_mut(usize::from(slot)) {
            *c += 1;
        }
    }
    count
}

/// A slot's preference order over the buckets, walked from the start: a
/// bijection of `0..FLOW_TABLE_BUCKETS` keyed by the slot, made of steps
/// that are each invertible modulo the (power of two) table size: xor and
/// add a key, multiply by an odd number, xor-shift right.
struct Preference {
    slot: usize,
    /// Next rank to look at.
    rank: u32,
    keys: [u32; 4],
}

impl Preference {
    fn new(slot: usize) -> Self {
        let a = splitmix64(slot as u64);
        let b = splitmix64(a);
        Preference {
            slot,
            rank: 0,
            keys: [
                a as u32,
                (a >> 32) as u32 | 1,
                b as u32,
                (b >> 32) as u32 | 1,
            ],
        }
    }

    /// The next bucket in this slot's order, `None` once all were seen.
    fn next(&mut self) -> Option<usize> {
        if self.rank > BUCKET_MASK {
            return None;
        }
        let [k0, k1, k2, k3] = self.keys;
        let mut x = (self.rank ^ k0).wrapping_mul(k1) & BUCKET_MASK;
        x ^= x >> 7;
        x = x.wrapping_add(k2).wrapping_mul(k3) & BUCKET_MASK;
        x ^= x >> 5;
        self.rank += 1;
        Some(x as usize)
    }
}

/// SplitMix64 finaliser: turns consecutive slot numbers into unrelated keys.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: u32 = FLOW_TABLE_BUCKETS as u32;

    fn build(active: &[u8]) -> FlowTable {
        next_table(&FlowTable::EMPTY, active)
    }

    fn moved(a: &FlowTable, b: &FlowTable) -> usize {
        a.slots.iter().zip(&b.slots).filter(|(x, y)| x != y).count()
    }

    /// Counts of active members differ by at most 1 and nothing else owns a bucket.
    fn assert_balanced(table: &FlowTable, active: &[u8]) {
        let counts = bucket_counts(table);
        if active.is_empty() {
            assert!(table.slots.iter().all(|&s| s == NO_MEMBER));
            return;
        }
        let own: Vec<u32> = active.iter().map(|&s| counts[usize::from(s)]).collect();
        let (min, max) = (own.iter().min().unwrap(), own.iter().max().unwrap());
        assert!(max - min <= 1, "unbalanced {own:?} for {active:?}");
        assert_eq!(
            own.iter().sum::<u32>(),
            B,
            "a bucket left without an active member"
        );
    }

    /// Small deterministic PRNG for the randomised tests (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        }
    }

    #[test]
    fn preference_orders_are_permutations() {
        for slot in [0, 1, 2, 63] {
            let mut p = Preference::new(slot);
            let mut seen = vec![false; FLOW_TABLE_BUCKETS];
            while let Some(b) = p.next() {
                assert!(!seen[b], "slot {slot} visits bucket {b} twice");
                seen[b] = true;
            }
            assert!(seen.iter().all(|&s| s));
        }
    }

    #[test]
    fn no_active_member_empties_the_table() {
        let full = build(&[0, 1, 2]);
        assert_balanced(&next_table(&full, &[]), &[]);
        assert_balanced(&build(&[]), &[]);
    }

    #[test]
    fn balanced_for_every_group_size() {
        for n in 1..=MAX_MEMBERS as u8 {
            let active: Vec<u8> = (0..n).collect();
            assert_balanced(&build(&active), &active);
        }
        // Sparse slots, and a previous table owned by other slots and junk.
        let mut prev = build(&[5, 9, 40]);
        prev.slots[..100].fill(200);
        for active in [&[1u8, 7, 63][..], &[9], &[5, 40, 41, 42, 60]] {
            assert_balanced(&next_table(&prev, active), active);
        }
    }

    #[test]
    fn removal_moves_only_the_leavers_buckets_evenly() {
        let before_set = [0u8, 1, 2, 3, 4];
        let after_set = [0u8, 1, 3, 4];
        let before = build(&before_set);
        let after = next_table(&before, &after_set);
        assert_balanced(&after, &after_set);
        let mut gained = [0u32; SLOTS];
        for (&old, &new) in before.slots.iter().zip(&after.slots) {
            if old != 2 {
                assert_eq!(old, new, "a surviving member's bucket moved");
            } else {
                gained[usize::from(new)] += 1;
            }
        }
        let gains: Vec<u32> = after_set.iter().map(|&s| gained[usize::from(s)]).collect();
        assert_eq!(gains.iter().sum::<u32>(), bucket_counts(&before)[2]);
        assert!(
            gains.iter().max().unwrap() - gains.iter().min().unwrap() <= 1,
            "{gains:?}"
        );
    }

    #[test]
    fn addition_moves_only_the_newcomers_share() {
        for n in 2..=MAX_MEMBERS as u8 {
            let old: Vec<u8> = (0..n - 1).collect();
            let new: Vec<u8> = (0..n).collect();
            let before = build(&old);
            let after = next_table(&before, &new);
            assert_balanced(&after, &new);
            let newcomer = n - 1;
            for (&o, &a) in before.slots.iter().zip(&after.slots) {
                assert!(
                    o == a || a == newcomer,
                    "a bucket moved between old members"
                );
            }
            let share = B / u32::from(n);
            let m = moved(&before, &after) as u32;
            assert_eq!(m, bucket_counts(&after)[usize::from(newcomer)]);
            assert!(
                m >= share && m <= share + 1,
                "n={n}: moved {m}, share {share}"
            );
        }
    }

    #[test]
    fn deterministic() {
        let active = [3u8, 8, 13, 21];
        assert_eq!(build(&active).slots, build(&active).slots);
        let prev = build(&[3, 8]);
        assert_eq!(
            next_table(&prev, &active).slots,
            next_table(&prev, &active).slots
        );
    }

    #[test]
    fn unchanged_set_changes_nothing() {
        let t = build(&[0, 1, 2]);
        assert_eq!(moved(&t, &next_table(&t, &[0, 1, 2])), 0);
    }

    #[test]
    fn rebalancing_moves_only_the_surplus() {
        // Slot 0 owns three quarters, slot 1 a quarter: only the excess moves.
        let mut prev = FlowTable::EMPTY;
        for (i, s) in prev.slots.iter_mut().enumerate() {
            *s = u8::from(i % 4 == 3);
        }
        let next = next_table(&prev, &[0, 1]);
        assert_balanced(&next, &[0, 1]);
        assert_eq!(moved(&prev, &next), FLOW_TABLE_BUCKETS / 4);
        assert!(prev
            .slots
            .iter()
            .zip(&next.slots)
            .all(|(&p, &n)| p == n || (p, n) == (0, 1)));
    }

    #[test]
    fn fail_then_repair_moves_little_and_restores_most_buckets() {
        for n in [2u8, 3, 4, 8, 16, 64] {
            let all: Vec<u8> = (0..n).collect();
            let victim = n / 2;
            let survivors: Vec<u8> = all.iter().copied().filter(|&s| s != victim).collect();
            let start = build(&all);
            let failed = next_table(&start, &survivors);
            let repaired = next_table(&failed, &all);
            assert_balanced(&repaired, &all);
            let m = moved(&failed, &repaired) as f64;
            let bound = f64::from(B) / f64::from(n) + 0.02 * f64::from(B);
            assert!(m <= bound, "n={n}: repair moved {m} buckets, bound {bound}");
            // Not required for correctness, but the point of preference orders:
            // the repaired member mostly gets its own flows back.
            let own_before = start.slots.iter().filter(|&&s| s == victim);
            let regained = start
                .slots
                .iter()
                .zip(&repaired.slots)
                .filter(|(&s, &r)| s == victim && r == victim)
                .count();
            let had = own_before.count();
            assert!(
                regained * 2 >= had,
                "n={n}: got back {regained} of {had} buckets"
            );
        }
    }

    #[test]
    fn buckets_are_scattered_not_in_runs() {
        // With two members a random assignment has runs of about log2(4096).
        let t = build(&[0, 1]);
        let mut longest = 0;
        let mut run = 0;
        for w in t.slots.windows(2) {
            run = if w[0] == w[1] { run + 1 } else { 0 };
            longest = longest.max(run + 1);
        }
        assert!(longest <= 32, "longest run {longest}");
    }

    #[test]
    fn random_churn_keeps_every_property() {
        let mut rng = Rng(0x1234_5678_9abc_def0);
        let mut set = [false; SLOTS];
        let mut table = FlowTable::EMPTY;
        for _ in 0..500 {
            let flip = rng.below(MAX_MEMBERS.into()) as usize;
            let was = set[flip];
            set[flip] = !was;
            let active: Vec<u8> = (0..SLOTS).filter(|&s| set[s]).map(|s| s as u8).collect();
            let next = next_table(&table, &active);
            assert_balanced(&next, &active);
            if was && !active.is_empty() {
                // Left: only its buckets move.
                assert!(table
                    .slots
                    .iter()
                    .zip(&next.slots)
                    .all(|(&p, &n)| p == n || p == flip as u8));
            }
            table = next;
        }
    }

    /// Exercises the largest case end to end (64 members, from empty, then
    /// every member failing once); its speed is measured by the benchmarks.
    #[test]
    fn largest_group_from_empty_and_through_failures() {
        let all: Vec<u8> = (0..MAX_MEMBERS as u8).collect();
        let mut table = build(&all);
        for victim in all.iter().copied() {
            let rest: Vec<u8> = all.iter().copied().filter(|&s| s != victim).collect();
            table = next_table(&table, &rest);
            assert_balanced(&table, &rest);
            table = next_table(&table, &all);
            assert_balanced(&table, &all);
        }
    }

    /// What the kernel does on its own when it finds a member down is
    /// exactly what ipmpd writes next, for every member of every table of
    /// a random churn: no flow moves twice.
    #[test]
    fn backups_are_the_next_table_without_the_owner() {
        let mut rng = Rng(0x0bad_5eed_1234_5678);
        let mut set = [false; SLOTS];
        let mut table = FlowTable::EMPTY;
        for _ in 0..60 {
            let flip = rng.below(12) as usize;
            set[flip] = !set[flip];
            let active: Vec<u8> = (0..SLOTS).filter(|&s| set[s]).map(|s| s as u8).collect();
            table = next_table(&table, &active);
            assert_eq!(&table.active[..active.len()], &active[..]);
            assert_eq!(table.active_count as usize, active.len());
            for &failed in &active {
                let rest: Vec<u8> = active.iter().copied().filter(|&s| s != failed).collect();
                assert_eq!(
                    without(&table, failed),
                    next_table(&table, &rest).slots,
                    "the kernel's choice for {failed} differs from ipmpd's"
                );
            }
            // A backup is never the owner itself.
            assert!(table
                .slots
                .iter()
                .zip(&table.backups)
                .all(|(&s, &b)| s == NO_MEMBER || s != b));
        }
    }

    #[test]
    fn the_fast_path_writes_what_the_policy_writes_next() {
        let active = [1u8, 4, 6, 9];
        let t = build(&active);
        for &failed in &active {
            let rest: Vec<u8> = active.iter().copied().filter(|&s| s != failed).collect();
            let fast = fail_over(&t, failed);
            assert_eq!(fast.slots, next_table(&t, &rest).slots);
            assert_eq!(&fast.active[..rest.len()], &rest[..]);
            assert_eq!(fast.active_count as usize, rest.len());
            assert!(fast.backups.iter().all(|&b| b != failed));
            // And the policy's table after it moves nothing more.
            assert_eq!(next_table(&fast, &rest).slots, fast.slots);
        }
    }

    #[test]
    fn a_lone_member_has_no_backup() {
        let t = build(&[4]);
        assert!(t.backups.iter().all(|&b| b == NO_MEMBER));
        assert_eq!(&t.active[..1], &[4]);
    }

    #[test]
    fn bucket_counts_ignore_no_member() {
        let mut t = FlowTable::EMPTY;
        t.slots[0] = 3;
        t.slots[1] = 3;
        t.slots[2] = 63;
        let c = bucket_counts(&t);
        assert_eq!((c[3], c[63], c.iter().sum::<u32>()), (2, 1, 3));
    }
}
