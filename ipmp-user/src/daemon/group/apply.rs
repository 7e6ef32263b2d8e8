//! The policy's decisions carried out: the flow table, the kernel's
//! verdicts, the cast member, the group interface's carrier and MTU, and
//! each member's pinned record.
use std::time::{Duration, Instant};

use anyhow::Result;
use ipmp_common::{Member, NO_MEMBER};
use tracing::debug;

use super::{settings, Group};
use crate::{
    daemon::record,
    netlink::Netlink,
    policy::flow_table::{fail_over, next_table},
};

/// How often the kernel's verdicts on members ipmpd counts as active are
/// read (newly active members' at once).
pub(super) const TAKEN_OUT_SWEEP: Duration = Duration::from_secs(10);

impl Group {
    /// Writes the group's dataplane settings if they changed: the
    /// configured ones with the policy's cast member. A new cast member
    /// takes over the multicast groups.
    pub(super) fn settle_settings(&mut self) -> Result<()> {
        let cast = self
            .policy
            .cast_member()
            .map_or(NO_MEMBER, |i| self.members.at(i)) as u32;
        let settings = settings::with_cast(&self.configured, cast);
        if self.settings != Some(settings) {
            self.dataplane.set_group(&settings)?;
            self.settings = Some(settings);
            self.hold_cast_groups();
        }
        Ok(())
    }

    /// Brings the dataplane and the group interface in line with the policy,
    /// after an event read at `since`. The flow table goes first: it is what
    /// moves traffic off a dead member.
    pub(super) async fn apply(&mut self, nl: &Netlink, since: Instant) -> Result<()> {
        let mut active: Vec<u8> = self
            .policy
            .active_members()
            .into_iter()
            .map(|i| self.members.at(i))
            .collect();
        active.sort_unstable();
        self.put_back_in_service(&active, since)?;
        self.write_flow_table(&active, since)?;
        self.bind_inbound(&active)?;
        for notice in std::mem::take(&mut self.notices) {
            self.announce(
                notice.level(),
                notice.kind(),
                notice.member(),
                &notice.to_string(),
            );
        }
        self.settle_settings()?;
        let carrier = !active.is_empty();
        if self.carrier != Some(carrier) {
            nl.set_up(&self.peer, carrier).await?;
            self.carrier = Some(carrier);
        }
        let mtus = self
            .members
            .iter()
            .filter_map(|m| m.link.as_ref().map(|l| l.mtu));
        if let Some(mtu) = settings::mtu_change(self.mtu, mtus) {
            nl.set_mtu(&self.name, mtu).await?;
            self.mtu = mtu;
        }
        self.write_records()
    }

    /// Writes the flow table for the `active` members (slots, sorted), if
    /// it changes.
    fn write_flow_table(&mut self, active: &[u8], since: Instant) -> Result<()> {
        // The table is a function of the previous one and the active set:
        // unchanged set, unchanged table (the backups cost a table per
        // member to compute, too much for every tick of a large group).
        let unchanged = self.table_settled
            && active[..] == self.table.active[..self.table.active_count as usize];
        let next = if unchanged {
            self.table
        } else {
            next_table(&self.table, active)
        };
        self.table_settled = true;
        if next != self.table {
            self.dataplane.write_flow_table(&next)?;
            let moved = next
                .slots
                .iter()
                .zip(self.table.slots.iter())
                .filter(|(a, b)| a != b)
                .count();
            self.table = next;
            debug!(
                "Flow table of group {} rewritten, {moved} buckets moved, {} us after the event",
                self.name,
                since.elapsed().as_micros()
            );
        }
        Ok(())
    }

    /// The kernel takes a member whose link it finds down out of the egress
    /// path by itself, and keeps it out; putting it back is the policy's
    /// call, made here for every member the policy counts as active.
    ///
    /// Members that were active already are looked at only every
    /// [`TAKEN_OUT_SWEEP`] (the kernel marks a member again at once if its
    /// link is still down): the netlink messages that bring a member back
    /// make it newly active, so a sweep only catches what netlink lost.
    fn put_back_in_service(&mut self, active: &[u8], now: Instant) -> Result<()> {
        let sweep = self
            .taken_out_swept
            .is_none_or(|at| now >= at + TAKEN_OUT_SWEEP);
        if sweep {
            self.taken_out_swept = Some(now);
        }
        let was_active = &self.table.active[..self.table.active_count as usize];
        for &slot in active {
            if !sweep && was_active.contains(&slot) {
                continue;
            }
            let why = self.dataplane.taken_out(slot)?;
            if why != 0 {
                self.dataplane.put_back(slot)?;
                debug!(
                    "{} back in service in group {} (the kernel had taken it out: {})",
                    self.members.name_of(slot),
                    self.name,
                    settings::taken_out_reason(why)
                );
            }
        }
        Ok(())
    }

    /// The fast path: interface `index` was reported down (by the message
    /// read at `received`); if it is an active member, the flow table flips
    /// at once to what the kernel already does, and its data addresses move
    /// (the peers are told). The policy confirms when the full message
    /// reaches it, and then moves nothing.
    pub fn link_alarm(&mut self, index: u32, received: Instant) -> Result<()> {
        let Some(m) = self.members.by_ifindex(index) else {
            return Ok(());
        };
        let active = &self.table.active[..self.table.active_count as usize];
        if !active.contains(&m.slot) {
            return Ok(());
        }
        let next = fail_over(&self.table, m.slot);
        self.dataplane.write_flow_table(&next)?;
        self.table = next;
        // Its backups are partial: the policy's table replaces it.
        self.table_settled = false;
        debug!(
            "Link alarm: {} of group {} down, flow table flipped {} us after the message",
            m.name,
            self.name,
            received.elapsed().as_micros()
        );
        self.bind_inbound(&next.active[..next.active_count as usize])
    }

    /// Tells the dataplane where the member in `slot` is (ifindex 0 while
    /// missing), and keeps its record there.
    pub(super) fn publish_member(&mut self, slot: u8) -> Result<()> {
        let entry = self.member_record(slot);
        self.members.get_mut(slot).record = entry.record;
        self.dataplane.set_member(slot, &entry)
    }

    /// The member in `slot` as its pinned record holds it.
    pub(super) fn member_record(&self, slot: u8) -> Member {
        let bits = self.record_bits(slot);
        let m = self.members.get(slot);
        let (test_v4, test_v6) = self.probing.test_addresses(slot);
        let mut entry = Member {
            failures: m.failures,
            repairs: m.repairs,
            probes: self.probing.counts(slot),
            test_v4: test_v4.map_or(0, |a| u32::from_ne_bytes(a.octets())),
            test_v6: test_v6.map_or([0; 16], |a| a.octets()),
            record: bits,
            saved_sysctls: m.saved_sysctls.unwrap_or_default(),
            test_v4_prefix: m.test_address.map_or(0, |a| a.prefix_len()),
            ..Member::default()
        };
        let n = m.name.len().min(entry.name.len() - 1);
        entry.name[..n].copy_from_slice(&m.name.as_bytes()[..n]);
        if let Some(link) = &m.link {
            entry.ifindex = link.index;
            entry.mac = link.mac;
        }
        entry
    }

    /// The member in `slot`'s decisions as its record holds them.
    fn record_bits(&self, slot: u8) -> u32 {
        let saved = self.members.get(slot).saved_sysctls.is_some();
        record::bits(&self.policy.kept(self.members.position(slot)), saved)
    }

    /// Keeps every member's record in step with the policy's decisions.
    fn write_records(&mut self) -> Result<()> {
        for slot in self.members.slots() {
            if self.record_bits(slot) != self.members.get(slot).record {
                self.publish_member(slot)?;
            }
        }
        Ok(())
    }
}
