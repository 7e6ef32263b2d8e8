//! Members coming and going: registered with the policy and the prober,
//! their interfaces taken in hand when they appear (sysctls, test address,
//! policy rule, XDP program), and what ipmpd set up on them removed when
//! they leave the group.
use anyhow::Result;
use ipmp_common::Member;
use ipnet::IpNet;
use tracing::{info, warn};

use super::{
    members::MemberRuntime,
    settings::{self},
    Group,
};
use crate::{
    config::{MemberConfig, XdpMode},
    daemon::{record, teardown},
    dataplane::Attached,
    model::XdpStatus,
    netlink::{member_table, Link, Netlink},
    policy::group::{Event, MemberSpec},
    sysctl,
};

impl Group {
    /// Adds member `m` in `slot` and takes its interface in hand if it
    /// exists (a reload's new member).
    pub(super) async fn add_member(
        &mut self,
        nl: &Netlink,
        m: &MemberConfig,
        slot: u8,
    ) -> Result<()> {
        self.register_member(m, slot, Member::default())?;
        self.take_in_hand(nl, slot).await
    }

    /// Adds member `m` in `slot` to the policy and the prober, starting from
    /// the record `kept` in the pins (its decisions and counters; a default
    /// one for a member new to the slot, whose counters are then cleared).
    pub(super) fn register_member(
        &mut self,
        m: &MemberConfig,
        slot: u8,
        kept: Member,
    ) -> Result<()> {
        let now = self.epoch.elapsed();
        let probing = self.probing.add_member(m, slot, kept.probes, now);
        self.policy.add_member(MemberSpec {
            name: m.interface.clone(),
            standby: m.standby,
            probing,
        })?;
        self.members.push(MemberRuntime {
            name: m.interface.clone(),
            slot,
            test_address: m.test_address.map(IpNet::V4),
            link: None,
            reported: false,
            failures: kept.failures,
            repairs: kept.repairs,
            table: member_table(&m.interface),
            record: 0,
            saved_sysctls: record::saved_sysctls(&kept),
            xdp: None,
        });
        if kept.name[0] == 0 {
            // Another member's traffic counts, device and kernel verdict
            // are not this one's.
            self.dataplane.clear_member_counters(slot)?;
            self.dataplane.forget_member_device(slot)?;
            self.dataplane.put_back(slot)?;
            return Ok(());
        }
        let decisions = record::kept(kept.record);
        self.policy.restore(&m.interface, decisions)?;
        if decisions.offline {
            self.probing.set_offline(slot, true, now);
        } else if decisions.probe_failed {
            self.probing.restore_failed(slot, now);
        }
        Ok(())
    }

    /// Takes the member in `slot`'s interface in hand if it exists, or
    /// reports it missing.
    pub(super) async fn take_in_hand(&mut self, nl: &Netlink, slot: u8) -> Result<()> {
        let name = self.members.get(slot).name.clone();
        match nl.link(&name).await? {
            Some(link) => self.member_link(nl, slot, link).await,
            None => {
                warn!(
                    "Interface {name} of group {} does not exist; it will be adopted when it appears",
                    self.name
                );
                self.members.get_mut(slot).reported = true;
                self.probing.gone(slot, self.epoch.elapsed());
                self.event(Event::Removed(name))?;
                self.publish_member(slot)
            }
        }
    }

    /// Takes the member in `slot` out of the group: what ipmpd set up on
    /// its interface goes, its slot is freed, its traffic moves to the
    /// others.
    pub(super) async fn remove_member(&mut self, nl: &Netlink, slot: u8) -> Result<()> {
        let record = self.member_record(slot);
        let m = self.members.remove(slot);
        // A new member may get the slot: it must announce its bindings.
        for bound in &mut self.bindings {
            if *bound == Some(m.slot) {
                *bound = None;
            }
        }
        self.probing.remove_member(m.slot);
        self.notices.extend(self.policy.remove_member(&m.name)?);
        self.dataplane.detach_member(&m.name)?;
        self.dataplane.set_member(m.slot, &Member::default())?;
        self.dataplane.forget_member_device(m.slot)?;
        self.dataplane.put_back(m.slot)?;
        teardown::member(nl, &record).await?;
        info!("Interface {} removed from group {}", m.name, self.name);
        Ok(())
    }

    /// Members a previous configuration had and this one does not: what
    /// ipmpd set up for them goes, and their slots are freed.
    pub(super) async fn remove_unconfigured_members(&mut self, nl: &Netlink) -> Result<()> {
        for (slot, m) in self.dataplane.members()? {
            let name = record::name(&m);
            if !self.config.members.iter().any(|c| c.interface == name) {
                info!(
                    "Interface {name} is no longer in group {}: removing its XDP program, \
                     test address, rules and table",
                    self.name
                );
                self.dataplane.detach_member(&name)?;
                teardown::member(nl, &m).await?;
                teardown::detached(nl, &name).await?;
                self.dataplane.set_member(slot, &Member::default())?;
            }
        }
        Ok(())
    }

    /// The member in `slot`'s link as the kernel now reports it: prepares a
    /// member that (re)appeared, and feeds what changed to the policy.
    pub(super) async fn member_link(&mut self, nl: &Netlink, slot: u8, link: Link) -> Result<()> {
        let previous = self.members.get_mut(slot).link.replace(link.clone());
        let name = link.name.clone();
        let appeared = previous.as_ref().map(|p| p.index) != Some(link.index);
        if appeared {
            self.prepare_member(nl, slot, &link).await?;
            if std::mem::replace(&mut self.members.get_mut(slot).reported, true) {
                self.event(Event::Appeared(name.clone()))?;
            }
        }
        let was = previous.filter(|_| !appeared);
        if was.as_ref().map(|p| p.admin_up) != Some(link.admin_up) {
            self.event(either(
                link.admin_up,
                Event::AdminUp,
                Event::AdminDown,
                &name,
            ))?;
        }
        if was.as_ref().map(|p| p.carrier) != Some(link.carrier) {
            self.event(either(link.carrier, Event::LinkUp, Event::LinkDown, &name))?;
        }
        let up = |l: &Link| l.admin_up && l.carrier;
        if was.as_ref().map(up) != Some(up(&link)) {
            self.probing.link(slot, up(&link), self.epoch.elapsed());
        }
        if link.admin_up && was.as_ref().is_some_and(|p| !p.admin_up) {
            // Taking a link down flushed its routes: mirror them again.
            let routes = nl.routes_through(self.index).await?;
            self.mirror_member(nl, slot, &routes).await?;
        }
        Ok(())
    }

    /// Sets up a member whose interface (re)appeared as `link`: sysctls,
    /// test address, policy rule, probing, XDP program and its record.
    async fn prepare_member(&mut self, nl: &Netlink, slot: u8, link: &Link) -> Result<()> {
        let originals = sysctl::prepare_member(&self.members.get(slot).name)?;
        // The first ipmpd to prepare it saw the originals; later ones see ours.
        self.members
            .get_mut(slot)
            .saved_sysctls
            .get_or_insert(originals);
        let m = self.members.get(slot);
        if let Some(addr) = m.test_address {
            nl.add_address(link.index, addr, true).await?;
        }
        nl.ensure_member_rule(&m.name, m.table).await?;
        let link_local = nl.link_local(link.index).await?;
        self.probing
            .present(slot, link.index, link_local, self.epoch.elapsed());
        let xdp = self.attach_xdp(nl, slot, link).await?;
        self.members.get_mut(slot).xdp = Some(xdp);
        let m = self.members.get(slot);
        if !self.dataplane.locate_member(slot, link.index)? {
            warn!(
                "The kernel cannot read the link state of {}: when it fails, traffic moves \
                 only once ipmpd has heard of it",
                m.name
            );
        }
        self.publish_member(slot)
    }

    /// Attaches (or adopts) the member in `slot`'s XDP program in the mode
    /// the setting and its `link` call for; how it is attached, and why.
    async fn attach_xdp(&mut self, nl: &Netlink, slot: u8, link: &Link) -> Result<XdpStatus> {
        let name = self.members.get(slot).name.clone();
        let peer_native = self.xdp_mode == XdpMode::Auto
            && link.veth
            && nl.peer_runs_native_xdp(link).await.unwrap_or_else(|e| {
                warn!("Cannot see the XDP program of {name}'s veth peer: {e:#}");
                false
            });
        let (mode, why) = settings::xdp_mode(self.xdp_mode, link.veth, peer_native);
        let reason = match self.dataplane.attach_member(&name, slot, mode)? {
            Attached::Adopted => {
                info!("Adopted the XDP program on {name}");
                "adopted from the pins".to_string()
            }
            Attached::New => {
                info!("Attached the XDP program to {name} in {why}");
                why.to_string()
            }
        };
        // The kernel says which mode it took ("the driver's" may be either).
        let attached = nl.link(&name).await?.and_then(|l| l.xdp);
        Ok(XdpStatus {
            mode: attached.unwrap_or(crate::ipmpstat::UNKNOWN).to_string(),
            reason,
        })
    }
}

/// The policy event for member `name`'s state going `up` or down.
fn either(
    up: bool,
    went_up: fn(String) -> Event,
    went_down: fn(String) -> Event,
    name: &str,
) -> Event {
    if up {
        went_up(name.to_string())
    } else {
        went_down(name.to_string())
    }
}
