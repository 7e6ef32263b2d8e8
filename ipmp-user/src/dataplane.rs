//! The group's kernel side: loading the programs, pinning and adopting them
//! and their maps, and typed access to the maps. Policy never sees aya.
use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{anyhow, Context, Result};
use aya::{
    maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, PerCpuValues, RingBuf},
    programs::{
        links::{FdLink, PinnedLink},
        tc::{SchedClassifierLink, TcAttachType},
        xdp::XdpLink,
        SchedClassifier, Xdp, XdpMode,
    },
    Ebpf, EbpfLoader, TestRun, TestRunOptions, TestRunResult,
};
use ipmp_common::{
    FlowTable, GroupConfig, Member, MemberCounters, MemberDevice, DROP_REASONS,
    GLOBAL_LINK_CHECK_BY_LOADS, GLOBAL_LINK_STATE_NOCARRIER, GLOBAL_LINK_STATE_START,
    GLOBAL_MEMBER_SLOT, GLOBAL_NET_DEVICE_IFINDEX, GLOBAL_NET_DEVICE_STATE, GLOBAL_NET_DEVICE_TYPE,
    GLOBAL_XDP_BUFF_RXQ, GLOBAL_XDP_RXQ_INFO_DEV, MAP_ACTIVE_TABLE, MAP_DATA_ADDRESSES, MAP_DROPS,
    MAP_FLOW_TABLE, MAP_GROUP, MAP_MEMBERS, MAP_MEMBER_DEVICES, MAP_MEMBER_STATS,
    MAP_PROBE_REPLIES, MAX_MEMBERS, PROG_EGRESS, PROG_LOCATE_MEMBER, PROG_MEMBER_EGRESS,
    PROG_MEMBER_XDP,
};

use tracing::warn;

use crate::{kernel_layout::KernelLayout, objects::programs};

const EGRESS_LINK_PIN: &str = "link_egress";

/// Whether an attachment was taken over from a previous ipmpd or made anew.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attached {
    Adopted,
    New,
}

/// Every slot number, for the loader to point a member's program at.
static MEMBER_SLOTS: [u32; MAX_MEMBERS as usize] = {
    let mut slots = [0; MAX_MEMBERS as usize];
    let mut i = 0;
    while i < slots.len() {
        slots[i] = i as u32;
        i += 1;
    }
    slots
};

/// One group's programs and maps, pinned under `pin_dir`.
pub struct GroupDataplane {
    /// The egress program, and the group's maps.
    ebpf: Ebpf,
    /// Loads the members' program instances with the group's pins and the
    /// kernel's layout, from `programs` (linked for that kernel).
    loader: EbpfLoader<'static>,
    programs: &'static [u8],
    /// Each member's own XDP program instance (its slot is a load-time
    /// constant); the maps are the group's, shared through the pins.
    members: HashMap<String, Ebpf>,
    pin_dir: PathBuf,
    /// Every pinned map and attachment, held by ipmpd's own descriptors
    /// too: removing a pin detaches nothing while ipmpd runs, and
    /// [`Self::restore_pins`] pins it again.
    maps: Vec<(String, MapData)>,
    links: HashMap<PathBuf, FdLink>,
    /// The flow table copy the dataplane reads, once known: only this
    /// ipmpd writes it (the pin folder's lock), so a failover spends no
    /// syscall asking.
    active_copy: std::cell::Cell<Option<u32>>,
}

/// The value size each pinned map must have: an ipmpd of another version
/// may have pinned a map with another layout, which the programs of this
/// one would misread (the verifier refuses them).
fn expected_value_sizes() -> [(&'static str, usize); 7] {
    use std::mem::size_of;
    [
        (MAP_FLOW_TABLE, size_of::<FlowTable>()),
        (MAP_ACTIVE_TABLE, size_of::<u32>()),
        (MAP_MEMBERS, size_of::<Member>()),
        (MAP_GROUP, size_of::<GroupConfig>()),
        (MAP_MEMBER_STATS, size_of::<MemberCounters>()),
        (MAP_DROPS, size_of::<u64>()),
        (MAP_MEMBER_DEVICES, size_of::<MemberDevice>()),
    ]
}

/// Removes the pinned maps whose layout is not this ipmpd's (left by an
/// older one): they are created anew and ipmpd writes them again, where
/// adopting them would leave the group unable to load its programs.
fn drop_pins_of_another_layout(pin_dir: &Path) -> Result<()> {
    for (name, size) in expected_value_sizes() {
        let path = pin_dir.join(name);
        let Ok(map) = MapData::from_pin(&path) else {
            continue;
        };
        let pinned = map.info()?.value_size() as usize;
        if pinned != size {
            warn!(
                "Pinned map {} holds {pinned}-byte values, this ipmpd's {size}: an older \
                 ipmpd's layout; it is replaced and written anew",
                path.display()
            );
            remove_pin(&path)?;
        }
    }
    Ok(())
}

impl GroupDataplane {
    /// Loads the programs, reusing the maps pinned in `pin_dir` (a previous
    /// ipmpd's flow table and counters) or creating and pinning them there.
    pub fn load(pin_dir: &Path) -> Result<Self> {
        Self::load_for(pin_dir, KernelLayout::of_running_kernel()?)
    }

    /// [`Self::load`] for a kernel of `layout` (the bench and the tests
    /// load the programs as a kernel without `bpf_rdonly_cast` gets them).
    pub fn load_for(pin_dir: &Path, layout: &'static KernelLayout) -> Result<Self> {
        // Where the kernel has it, the link check reads with plain loads.
        static BY_LOADS: [u32; 2] = [0, 1];
        fs::create_dir_all(pin_dir)
            .with_context(|| format!("cannot create pin directory {}", pin_dir.display()))?;
        drop_pins_of_another_layout(pin_dir)?;
        let programs = programs(layout)?;
        let by_loads = &BY_LOADS[usize::from(layout.rdonly_cast_func.is_some())];
        let mut loader = EbpfLoader::new();
        loader
            // The programs have no CO-RE relocations: aya need not keep
            // (nor, for every member, parse again) the kernel's BTF.
            .btf(None)
            .default_map_pin_directory(pin_dir)
            .override_global(GLOBAL_NET_DEVICE_STATE, &layout.net_device_state, true)
            .override_global(GLOBAL_NET_DEVICE_IFINDEX, &layout.net_device_ifindex, true)
            .override_global(GLOBAL_NET_DEVICE_TYPE, &layout.net_device_type, true)
            .override_global(GLOBAL_LINK_CHECK_BY_LOADS, by_loads, true)
            .override_global(GLOBAL_XDP_BUFF_RXQ, &layout.xdp_buff_rxq, true)
            .override_global(GLOBAL_XDP_RXQ_INFO_DEV, &layout.xdp_rxq_info_dev, true)
            .override_global(GLOBAL_LINK_STATE_START, &layout.link_state_start, true)
            .override_global(
                GLOBAL_LINK_STATE_NOCARRIER,
                &layout.link_state_nocarrier,
                true,
            );
        let mut ebpf = loader
            .load(programs)
            .context("loading the ipmp eBPF programs")?;
        let egress: &mut SchedClassifier = program(&mut ebpf, PROG_EGRESS)?;
        egress.load().context("verifying the egress program")?;
        let asking: &mut SchedClassifier = program(&mut ebpf, PROG_MEMBER_EGRESS)?;
        asking
            .load()
            .context("verifying the members' egress program")?;
        let locate: &mut Xdp = program(&mut ebpf, PROG_LOCATE_MEMBER)?;
        locate
            .load()
            .context("verifying the program that locates members' devices")?;
        // The loader pinned every map by name (the object's own sections,
        // `.rodata` and the like, are not pinned).
        let mut maps = Vec::new();
        for (name, _) in ebpf.maps().filter(|(name, _)| !name.starts_with('.')) {
            let path = pin_dir.join(name);
            let map = MapData::from_pin(&path)
                .with_context(|| format!("opening pinned map {}", path.display()))?;
            maps.push((name.to_string(), map));
        }
        Ok(GroupDataplane {
            ebpf,
            loader,
            programs,
            members: HashMap::new(),
            pin_dir: pin_dir.to_owned(),
            maps,
            links: HashMap::new(),
            active_copy: std::cell::Cell::new(None),
        })
    }

    /// Pins again what someone removed from the pin folder (maps and
    /// attachments, from ipmpd's descriptors). Returns the pins restored.
    pub fn restore_pins(&mut self) -> Result<Vec<PathBuf>> {
        fs::create_dir_all(&self.pin_dir)
            .with_context(|| format!("cannot create pin directory {}", self.pin_dir.display()))?;
        // One directory read, not a stat per pin.
        let present: std::collections::HashSet<PathBuf> = fs::read_dir(&self.pin_dir)
            .with_context(|| format!("reading {}", self.pin_dir.display()))?
            .filter_map(|e| Some(e.ok()?.path()))
            .collect();
        let mut restored = Vec::new();
        for (name, map) in &self.maps {
            let path = self.pin_dir.join(name);
            if !present.contains(&path) {
                map.pin(&path)
                    .with_context(|| format!("pinning {}", path.display()))?;
                restored.push(path);
            }
        }
        let missing: Vec<PathBuf> = self
            .links
            .keys()
            .filter(|p| !present.contains(*p))
            .cloned()
            .collect();
        for path in missing {
            if let Some(link) = self.links.remove(&path) {
                let pinned = link
                    .pin(&path)
                    .with_context(|| format!("pinning {}", path.display()))?;
                self.links.insert(path.clone(), FdLink::from(pinned));
                restored.push(path);
            }
        }
        Ok(restored)
    }

    /// Loads (and verifies) `member`'s own XDP program for `slot`.
    pub fn load_member(&mut self, member: &str, slot: u8) -> Result<&mut Xdp> {
        let slot_value = MEMBER_SLOTS
            .get(usize::from(slot))
            .ok_or_else(|| anyhow!("member slot {slot} out of range"))?;
        let mut instance = self
            .loader
            .override_global(GLOBAL_MEMBER_SLOT, slot_value, true)
            .load(self.programs)
            .context("loading the ipmp eBPF programs")?;
        let xdp: &mut Xdp = program(&mut instance, PROG_MEMBER_XDP)?;
        xdp.load()
            .with_context(|| format!("verifying the XDP program of {member}"))?;
        // Replacing an earlier instance drops it; its pinned link, if any,
        // keeps running until the new program is swapped in.
        let instance = self
            .members
            .entry(member.to_string())
            .insert_entry(instance)
            .into_mut();
        program(instance, PROG_MEMBER_XDP)
    }

    /// Attaches the egress program to the group interface, atomically
    /// replacing the program of a pinned attachment when there is one, so
    /// forwarding never stops across an ipmpd restart.
    pub fn attach_egress(&mut self, group_if: &str) -> Result<Attached> {
        let pin = self.pin_dir.join(EGRESS_LINK_PIN);
        self.attach_tc_egress(PROG_EGRESS, group_if, pin)
    }

    /// The group interface was created again: the egress program is
    /// attached to the new one (its attachment went with the old one).
    pub fn reattach_egress(&mut self, group_if: &str) -> Result<()> {
        let pin = self.pin_dir.join(EGRESS_LINK_PIN);
        self.links.remove(&pin);
        remove_pin(&pin)?;
        self.attach_egress(group_if).map(drop)
    }

    /// Attaches the member XDP program to `member`, adopting a pinned
    /// attachment like [`Self::attach_egress`].
    pub fn attach_member(&mut self, member: &str, slot: u8, mode: XdpMode) -> Result<Attached> {
        let pin = self.member_link_pin(member);
        let prog = self.load_member(member, slot)?;
        let (attached, link) = attach_pinned(
            prog,
            &pin,
            |p, link| {
                let id = p.attach_to_link(XdpLink::try_from(link)?)?;
                Ok(p.take_link(id)?.try_into()?)
            },
            |p| {
                let id = p
                    .attach(member, mode)
                    .with_context(|| format!("attaching the XDP program to {member}"))?;
                Ok(p.take_link(id)?.try_into()?)
            },
        )?;
        self.links.insert(pin, link);
        self.attach_member_egress(member)?;
        Ok(attached)
    }

    /// Attaches the members' TC egress program (ARP requests from a data
    /// address leave as probes) to `member`, adopting a pinned attachment.
    fn attach_member_egress(&mut self, member: &str) -> Result<()> {
        let pin = self.member_egress_pin(member);
        self.attach_tc_egress(PROG_MEMBER_EGRESS, member, pin)
            .map(drop)
    }

    /// Attaches TC egress program `name` to `interface`, or swaps it into
    /// the attachment pinned at `pin`.
    fn attach_tc_egress(&mut self, name: &str, interface: &str, pin: PathBuf) -> Result<Attached> {
        let prog: &mut SchedClassifier = program(&mut self.ebpf, name)?;
        let (attached, link) = attach_pinned(
            prog,
            &pin,
            |p, link| {
                let id = p.attach_to_link(SchedClassifierLink::try_from(link)?)?;
                Ok(p.take_link(id)?.try_into()?)
            },
            |p| {
                let id = p
                    .attach(interface, TcAttachType::Egress)
                    .with_context(|| format!("attaching {name} to {interface}"))?;
                Ok(p.take_link(id)?.try_into()?)
            },
        )?;
        self.links.insert(pin, link);
        Ok(attached)
    }

    /// Detaches `member`'s programs (the member left the group).
    pub fn detach_member(&mut self, member: &str) -> Result<()> {
        for pin in [self.member_link_pin(member), self.member_egress_pin(member)] {
            remove_pin(&pin)?;
            // Dropping the last descriptor of the link detaches the program.
            self.links.remove(&pin);
        }
        self.members.remove(member);
        Ok(())
    }

    fn member_link_pin(&self, member: &str) -> PathBuf {
        self.pin_dir.join(format!("link_xdp_{member}"))
    }

    fn member_egress_pin(&self, member: &str) -> PathBuf {
        self.pin_dir.join(format!("link_tc_{member}"))
    }

    /// The flow table the dataplane is reading now.
    pub fn flow_table(&self) -> Result<FlowTable> {
        let active = self.active_copy()?;
        let tables: Array<&MapData, FlowTable> = map(&self.ebpf, MAP_FLOW_TABLE)?;
        Ok(tables.get(&active, 0)?)
    }

    fn active_copy(&self) -> Result<u32> {
        if let Some(copy) = self.active_copy.get() {
            return Ok(copy);
        }
        let index: Array<&MapData, u32> = map(&self.ebpf, MAP_ACTIVE_TABLE)?;
        let copy = index.get(&0, 0)? & 1;
        self.active_copy.set(Some(copy));
        Ok(copy)
    }

    /// Writes `table` into the copy the dataplane is not reading, then flips
    /// to it: packets see the old table or the new one, never a mix.
    pub fn write_flow_table(&mut self, table: &FlowTable) -> Result<()> {
        let spare = self.active_copy()? ^ 1;
        let mut tables: Array<&mut MapData, FlowTable> = map_mut(&mut self.ebpf, MAP_FLOW_TABLE)?;
        tables.set(spare, table, 0)?;
        let mut index: Array<&mut MapData, u32> = map_mut(&mut self.ebpf, MAP_ACTIVE_TABLE)?;
        index.set(0, spare, 0)?;
        self.active_copy.set(Some(spare));
        Ok(())
    }

    /// Lets the kernel find the device of the member in `slot` (interface
    /// `ifindex`), so that it can read the member's link state itself: runs
    /// the locating program once with the member as ingress interface.
    /// Returns whether the kernel now knows the device.
    pub fn locate_member(&mut self, slot: u8, ifindex: u32) -> Result<bool> {
        let mut packet = [0u8; 64];
        packet[..4].copy_from_slice(&u32::from(slot).to_ne_bytes());
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
        // rx_queue_index, egress_ifindex.
        let mut context = [0u8; 24];
        context[4..8].copy_from_slice(&(packet.len() as u32).to_ne_bytes());
        context[12..16].copy_from_slice(&ifindex.to_ne_bytes());
        let prog: &mut Xdp = program(&mut self.ebpf, PROG_LOCATE_MEMBER)?;
        prog.test_run(TestRunOptions {
            data_in: Some(&packet),
            ctx_in: Some(&context),
            ..TestRunOptions::new()
        })
        .with_context(|| format!("locating the device of interface {ifindex}"))?;
        let devices: Array<&MapData, MemberDevice> = map(&self.ebpf, MAP_MEMBER_DEVICES)?;
        let found = devices.get(&u32::from(slot), 0)?;
        Ok(found.net_device != 0 && found.ifindex == ifindex)
    }

    /// Forgets the device of the member in `slot` (it left the group).
    pub fn forget_member_device(&mut self, slot: u8) -> Result<()> {
        let mut devices: Array<&mut MapData, MemberDevice> =
            map_mut(&mut self.ebpf, MAP_MEMBER_DEVICES)?;
        Ok(devices.set(u32::from(slot), MemberDevice::default(), 0)?)
    }

    /// Why the kernel took the member in `slot` out of the egress path
    /// (`ipmp_common::TAKEN_OUT_*` bits), 0 while it has not.
    pub fn taken_out(&self, slot: u8) -> Result<u32> {
        let devices: Array<&MapData, MemberDevice> = map(&self.ebpf, MAP_MEMBER_DEVICES)?;
        Ok(devices.get(&u32::from(slot), 0)?.taken_out)
    }

    /// Puts the member in `slot` back in service after the kernel took it
    /// out: only ipmpd decides that a member may carry traffic again.
    pub fn put_back(&mut self, slot: u8) -> Result<()> {
        let mut devices: Array<&mut MapData, MemberDevice> =
            map_mut(&mut self.ebpf, MAP_MEMBER_DEVICES)?;
        let device = devices.get(&u32::from(slot), 0)?;
        if device.taken_out == 0 {
            return Ok(());
        }
        // The kernel may mark the member again between the read and the
        // write; it finds the link down again on the next packet if so.
        let back = MemberDevice {
            taken_out: 0,
            ..device
        };
        Ok(devices.set(u32::from(slot), back, 0)?)
    }

    /// Member slots as a previous ipmpd left them (slot, member).
    pub fn members(&self) -> Result<Vec<(u8, Member)>> {
        used_slots(&map(&self.ebpf, MAP_MEMBERS)?)
    }

    /// Publishes `member` in `slot` (ifindex 0 while the interface is missing).
    pub fn set_member(&mut self, slot: u8, member: &Member) -> Result<()> {
        let mut members: Array<&mut MapData, Member> = map_mut(&mut self.ebpf, MAP_MEMBERS)?;
        Ok(members.set(slot as u32, member, 0)?)
    }

    /// Zeroes the traffic counters of `slot` (a member new to the slot).
    pub fn clear_member_counters(&mut self, slot: u8) -> Result<()> {
        let mut stats: PerCpuArray<&mut MapData, MemberCounters> =
            map_mut(&mut self.ebpf, MAP_MEMBER_STATS)?;
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| e)?;
        let zero = PerCpuValues::try_from(vec![MemberCounters::default(); cpus])?;
        Ok(stats.set(u32::from(slot), zero, 0)?)
    }

    pub fn set_group(&mut self, config: &GroupConfig) -> Result<()> {
        let mut group: Array<&mut MapData, GroupConfig> = map_mut(&mut self.ebpf, MAP_GROUP)?;
        group.set(0, config, 0)?;
        Ok(())
    }

    /// Binds data address `key` ([`ipmp_common::data_address_key`]) to
    /// the member in `slot` for inbound traffic (`NO_MEMBER`: to none).
    pub fn bind_data_address(&mut self, key: [u8; 16], slot: u8) -> Result<()> {
        let mut addresses: BpfHashMap<&mut MapData, [u8; 16], u32> =
            map_mut(&mut self.ebpf, MAP_DATA_ADDRESSES)?;
        Ok(addresses.insert(key, u32::from(slot), 0)?)
    }

    /// Forgets data address `key`: XDP no longer answers for it.
    pub fn unbind_data_address(&mut self, key: &[u8; 16]) -> Result<()> {
        let mut addresses: BpfHashMap<&mut MapData, [u8; 16], u32> =
            map_mut(&mut self.ebpf, MAP_DATA_ADDRESSES)?;
        match addresses.remove(key) {
            Err(aya::maps::MapError::KeyNotFound) => Ok(()),
            other => Ok(other?),
        }
    }

    /// The data addresses in the pins (a previous ipmpd's bindings).
    pub fn data_addresses(&self) -> Result<Vec<([u8; 16], u32)>> {
        let addresses: BpfHashMap<&MapData, [u8; 16], u32> = map(&self.ebpf, MAP_DATA_ADDRESSES)?;
        Ok(addresses.iter().collect::<Result<_, _>>()?)
    }

    /// The ring buffer on which XDP hands over our probes' replies.
    pub fn take_probe_replies(&mut self) -> Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map(MAP_PROBE_REPLIES)
            .ok_or_else(|| anyhow!("map {MAP_PROBE_REPLIES} missing from the eBPF object"))?;
        Ok(RingBuf::try_from(map)?)
    }

    /// Runs the egress program, or with `member` that member's XDP program,
    /// on `packet` in the kernel (BPF_PROG_TEST_RUN), for benchmarks:
    /// returns the verdict and the kernel's average time per run.
    pub fn test_run(
        &mut self,
        member: Option<&str>,
        packet: &[u8],
        repeat: u32,
    ) -> Result<TestRunResult> {
        match member {
            None => test_run(&mut self.ebpf, PROG_EGRESS, packet, None, repeat),
            Some(m) => test_run(
                self.member_instance(m)?,
                PROG_MEMBER_XDP,
                packet,
                None,
                repeat,
            ),
        }
    }

    /// Runs `member`'s XDP program once on `packet` in the kernel
    /// (BPF_PROG_TEST_RUN): its verdict and the frame as it left it.
    pub fn run_member_once(&mut self, member: &str, packet: &[u8]) -> Result<(u32, Vec<u8>)> {
        // An answer is built in place: never longer than the request.
        let mut out = vec![0u8; packet.len()];
        let result = test_run(
            self.member_instance(member)?,
            PROG_MEMBER_XDP,
            packet,
            Some(&mut out),
            1,
        )?;
        out.truncate(result.data_size_out as usize);
        Ok((result.return_value, out))
    }

    fn member_instance(&mut self, member: &str) -> Result<&mut Ebpf> {
        self.members
            .get_mut(member)
            .ok_or_else(|| anyhow!("{member} has no XDP program loaded"))
    }
}

/// The member records pinned in a group's pin folder (slot, member),
/// read without loading the programs (teardown without ipmpd).
pub fn pinned_members(group_pin_dir: &Path) -> Result<Vec<(u8, Member)>> {
    let path = group_pin_dir.join(MAP_MEMBERS);
    let data = MapData::from_pin(&path)
        .with_context(|| format!("opening pinned map {}", path.display()))?;
    let members: Array<MapData, Member> = Array::try_from(aya::maps::Map::Array(data))?;
    used_slots(&members)
}

fn used_slots<T: std::borrow::Borrow<MapData>>(
    members: &Array<T, Member>,
) -> Result<Vec<(u8, Member)>> {
    let mut found = Vec::new();
    for slot in 0..MAX_MEMBERS {
        let m = members.get(&slot, 0)?;
        if m.name[0] != 0 {
            found.push((slot as u8, m));
        }
    }
    Ok(found)
}

/// Runs program `name` of `ebpf` (TC or XDP) on `packet` `repeat` times;
/// `data_out` receives the packet as the program left it.
pub fn test_run(
    ebpf: &mut Ebpf,
    name: &str,
    packet: &[u8],
    data_out: Option<&mut [u8]>,
    repeat: u32,
) -> Result<TestRunResult> {
    let opts = TestRunOptions {
        data_in: Some(packet),
        data_out,
        repeat,
        ..TestRunOptions::new()
    };
    let prog = ebpf
        .program_mut(name)
        .ok_or_else(|| anyhow!("no program {name}"))?;
    Ok(match prog {
        aya::programs::Program::SchedClassifier(p) => p.test_run(opts)?,
        aya::programs::Program::Xdp(p) => p.test_run(opts)?,
        _ => anyhow::bail!("program {name} is neither TC nor XDP"),
    })
}

/// A group's counters, read from its pins: lets a reader (the metrics
/// server) count without going through ipmpd's event loop.
pub struct PinnedCounters {
    stats: PerCpuArray<MapData, MemberCounters>,
    drops: PerCpuArray<MapData, u64>,
}

impl PinnedCounters {
    pub fn open(group_pin_dir: &Path) -> Result<PinnedCounters> {
        let open = |name: &str| {
            let path = group_pin_dir.join(name);
            MapData::from_pin(&path)
                .with_context(|| format!("opening pinned map {}", path.display()))
        };
        Ok(PinnedCounters {
            stats: PerCpuArray::try_from(aya::maps::Map::PerCpuArray(open(MAP_MEMBER_STATS)?))?,
            drops: PerCpuArray::try_from(aya::maps::Map::PerCpuArray(open(MAP_DROPS)?))?,
        })
    }

    /// A member's counters, summed over CPUs.
    pub fn member(&self, slot: u8) -> Result<MemberCounters> {
        let mut sum = MemberCounters::default();
        for c in self.stats.get(&(slot as u32), 0)?.iter() {
            sum.add(c);
        }
        Ok(sum)
    }

    /// Dropped packets by reason (`ipmp_common::DROP_*`), summed over CPUs.
    pub fn drops(&self) -> Result<[u64; DROP_REASONS as usize]> {
        let mut sum = [0; DROP_REASONS as usize];
        for (reason, total) in sum.iter_mut().enumerate() {
            *total = self.drops.get(&(reason as u32), 0)?.iter().sum();
        }
        Ok(sum)
    }
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let prog = ebpf
        .program_mut(name)
        .ok_or_else(|| anyhow!("program {name} missing from the eBPF object"))?;
    Ok(prog.try_into()?)
}

fn map<'a, T>(ebpf: &'a Ebpf, name: &str) -> Result<T>
where
    T: TryFrom<&'a aya::maps::Map, Error = aya::maps::MapError>,
{
    let m = ebpf
        .map(name)
        .ok_or_else(|| anyhow!("map {name} missing from the eBPF object"))?;
    Ok(T::try_from(m)?)
}

fn map_mut<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<T>
where
    T: TryFrom<&'a mut aya::maps::Map, Error = aya::maps::MapError>,
{
    let m = ebpf
        .map_mut(name)
        .ok_or_else(|| anyhow!("map {name} missing from the eBPF object"))?;
    Ok(T::try_from(m)?)
}

/// Swaps `prog` into the link pinned at `pin`, or, when there is none (or
/// its interface is gone), attaches it anew and pins the link. Returns the
/// link too, for ipmpd to hold.
fn attach_pinned<P>(
    prog: &mut P,
    pin: &Path,
    swap: impl FnOnce(&mut P, FdLink) -> Result<FdLink>,
    attach: impl FnOnce(&mut P) -> Result<FdLink>,
) -> Result<(Attached, FdLink)> {
    if let Some(link) = pinned_link(pin) {
        if let Ok(held) = swap(prog, link) {
            return Ok((Attached::Adopted, held));
        }
        remove_pin(pin)?;
    }
    let link = attach(prog)?;
    let pinned = link
        .pin(pin)
        .with_context(|| format!("pinning {}", pin.display()))?;
    Ok((Attached::New, FdLink::from(pinned)))
}

fn pinned_link(pin: &Path) -> Option<FdLink> {
    PinnedLink::from_pin(pin).ok().map(FdLink::from)
}

fn remove_pin(pin: &Path) -> Result<()> {
    match fs::remove_file(pin) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing stale pin {}", pin.display()))
        }
        _ => Ok(()),
    }
}

/// The pin directory of this network namespace: `<pin_dir>/<netns inode>`,
/// so ipmpd instances in different namespaces never share pins. Mounts bpffs
/// on /sys/fs/bpf when it is not there (as under `ip netns exec`).
pub fn namespace_pin_dir(pin_dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    ensure_bpffs(pin_dir)?;
    let ino = fs::metadata("/proc/self/ns/net")
        .context("reading /proc/self/ns/net")?
        .ino();
    Ok(pin_dir.join(ino.to_string()))
}

fn ensure_bpffs(pin_dir: &Path) -> Result<()> {
    const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
    const BPFFS: &str = "/sys/fs/bpf";
    let mut probe = pin_dir.to_path_buf();
    while !probe.exists() {
        if !probe.pop() {
            break;
        }
    }
    let is_bpffs = nix::sys::statfs::statfs(&probe)
        .map(|s| s.filesystem_type().0 == BPF_FS_MAGIC)
        .unwrap_or(false);
    if is_bpffs {
        return Ok(());
    }
    if !pin_dir.starts_with(BPFFS) {
        return Err(anyhow!(
            "pin_dir {} is not on a bpf filesystem; mount one there (mount -t bpf bpf DIR) or use /sys/fs/bpf",
            pin_dir.display()
        ));
    }
    nix::mount::mount(
        Some("bpf"),
        BPFFS,
        Some("bpf"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .context("mounting bpffs on /sys/fs/bpf")?;
    Ok(())
}
