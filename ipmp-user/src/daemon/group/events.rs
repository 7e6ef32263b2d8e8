//! What happens to a group: kernel changes, probe replies, timers and
//! operator requests, fed to the policy (and the prober), whose decisions
//! [`Group::apply`] then carries out.
use std::time::Instant;

use anyhow::Result;
use ipmp_common::ProbeCounts;
use tracing::{error, info, warn, Level};

use super::{heal, Group, GroupError};
use crate::{
    model::{EventRecord, MemberState},
    netlink::{Change, Link, Netlink},
    policy::group::{Event, PolicyError},
    probe::ProberEvent,
};

impl Group {
    /// Serves the timers that are due: anti-flap holds and probes.
    pub async fn tick(&mut self, nl: &Netlink) -> Result<()> {
        // Replies the kernel already has count before any loss is judged.
        self.take_replies()?;
        let now = self.epoch.elapsed();
        if self.policy.next_deadline().is_some_and(|d| d <= now) {
            self.event(Event::Tick)?;
        }
        self.notify_peers(now);
        if self.refresh_due <= now && self.refresh_wanted() {
            self.refresh(nl, now).await?;
        }
        self.restore_pins_if_due();
        for slot in self.members.slots() {
            let index = self.members.get(slot).ifindex();
            if let (true, Some(index)) = (self.probing.awaits_link_local(slot), index) {
                if let Some(ll) = nl.link_local(index).await? {
                    self.probing.present(slot, index, Some(ll), now);
                    self.publish_member(slot)?;
                }
            }
        }
        let slots = self.members.slots();
        let before: Vec<ProbeCounts> = slots.iter().map(|&s| self.probing.counts(s)).collect();
        let events = self.probing.poll(now);
        self.prober_events(events)?;
        for (slot, counts) in slots.into_iter().zip(before) {
            if self.probing.counts(slot) != counts {
                self.publish_member(slot)?;
            }
        }
        self.apply(nl, Instant::now()).await
    }

    /// Resolves when the kernel may have probe replies for this group.
    pub async fn replies_ready(&self) -> Result<()> {
        self.replies.ready().await
    }

    /// Feeds the probe replies the kernel has timed to the prober.
    pub async fn on_probe_replies(&mut self, nl: &Netlink) -> Result<()> {
        self.take_replies()?;
        self.apply(nl, Instant::now()).await
    }

    fn take_replies(&mut self) -> Result<()> {
        for reply in self.replies.drain() {
            let events = self.probing.reply(&reply);
            self.prober_events(events)?;
        }
        Ok(())
    }

    /// The prober's failures and repairs go to the policy.
    fn prober_events(&mut self, events: Vec<ProberEvent>) -> Result<()> {
        for e in events {
            match e {
                ProberEvent::Failure(m) => self.event(Event::ProbeFailure(m))?,
                ProberEvent::Repair(m) => self.event(Event::ProbeRepair(m))?,
                ProberEvent::FdtRaised { ref member, .. } => {
                    self.announce(Level::ERROR, "fdt_raised", Some(member), &e.to_string())
                }
                ProberEvent::FdtImproved { ref member, .. } => {
                    self.announce(Level::INFO, "fdt_improved", Some(member), &e.to_string())
                }
            }
        }
        Ok(())
    }

    /// Handles a kernel change read at `received`.
    pub async fn on_change(
        &mut self,
        nl: &Netlink,
        change: &Change,
        received: Instant,
    ) -> Result<()> {
        match change {
            Change::Link(link) => {
                if let Some(slot) = self.members.by_name(&link.name).map(|m| m.slot) {
                    self.member_link(nl, slot, link.clone()).await?;
                    self.apply(nl, received).await?;
                }
            }
            Change::LinkGone(link) if link.index == self.index => {
                self.recreate_interface(nl).await?
            }
            Change::LinkGone(link) => self.member_gone(nl, link, received).await?,
            // Routes flushed with a deleted group interface (its link is
            // gone) are not mirrored: they come back with it.
            Change::Route { oif } if *oif == self.index => {
                if heal::exists(nl, &self.name, self.index).await? {
                    self.mirror_routes(nl).await?
                }
            }
            other => self.heal(nl, other).await?,
        }
        Ok(())
    }

    /// A member's interface `link` was deleted.
    async fn member_gone(&mut self, nl: &Netlink, link: &Link, received: Instant) -> Result<()> {
        let Some(slot) = self.members.by_name(&link.name).map(|m| m.slot) else {
            return Ok(());
        };
        if self.members.get_mut(slot).link.take().is_some() {
            self.probing.gone(slot, self.epoch.elapsed());
            self.event(Event::Removed(link.name.clone()))?;
            self.publish_member(slot)?;
            self.apply(nl, received).await?;
            // Its memory may be reused: the kernel must not read it (the
            // flow table no longer names it).
            self.dataplane.forget_member_device(slot)?;
        }
        Ok(())
    }

    /// Takes member `interface` offline or brings it online; `Ok(Some(reason))`
    /// when the policy refuses (the last usable member cannot go offline).
    pub async fn set_offline(
        &mut self,
        nl: &Netlink,
        interface: &str,
        offline: bool,
    ) -> Result<Option<String>> {
        let Some(slot) = self.members.by_name(interface).map(|m| m.slot) else {
            return Ok(Some(format!(
                "{interface} is not a member of group {}",
                self.name
            )));
        };
        let name = interface.to_string();
        let event = if offline {
            Event::Offline(name)
        } else {
            Event::Online(name)
        };
        match self.event(event) {
            Ok(()) => {}
            Err(GroupError::Policy(refusal @ PolicyError::OfflineRefused { .. })) => {
                return Ok(Some(refusal.to_string()))
            }
            Err(e) => return Err(e.into()),
        }
        self.probing
            .set_offline(slot, offline, self.epoch.elapsed());
        self.apply(nl, Instant::now()).await?;
        Ok(None)
    }

    /// Feeds the policy, and counts the failures (ok to failed) and repairs
    /// (failed to ok) it decides; its notices are logged by
    /// [`Self::apply`], after the flow table moved traffic (logging first
    /// would delay failover).
    pub(super) fn event(&mut self, event: Event) -> Result<(), GroupError> {
        let slots = self.members.slots();
        // The policy's members are in configuration order, as ours.
        let before: Vec<MemberState> = (0..slots.len())
            .map(|i| self.policy.member_state(i))
            .collect();
        let notices = self.policy.handle(event, self.epoch.elapsed())?;
        self.notices.extend(notices);
        for (i, (slot, was)) in slots.into_iter().zip(before).enumerate() {
            let m = self.members.get_mut(slot);
            let counted = match (was, self.policy.member_state(i)) {
                (MemberState::Ok, MemberState::Failed) => &mut m.failures,
                (MemberState::Failed, MemberState::Ok) => &mut m.repairs,
                _ => continue,
            };
            *counted += 1;
            self.publish_member(slot)?;
        }
        Ok(())
    }

    /// Logs a state change in in.mpathd's words, at in.mpathd's severity
    /// (its LOG_ERR is error, LOG_NOTICE info), and tells event followers.
    pub(super) fn announce(
        &self,
        level: Level,
        event: &str,
        interface: Option<&str>,
        message: &str,
    ) {
        match level {
            Level::ERROR => error!("{message}"),
            Level::WARN => warn!("{message}"),
            _ => info!("{message}"),
        }
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let _ = self.events.send(EventRecord {
            time: time.as_secs_f64(),
            group: self.name.clone(),
            interface: interface.map(str::to_string),
            event: event.to_string(),
            message: message.to_string(),
        });
    }
}
