//! Where the running kernel keeps the few fields the dataplane reads
//! itself (a member's link state, the device behind an XDP receive queue),
//! from the kernel's own BTF (`/sys/kernel/btf/vmlinux`). Layouts change
//! between kernels and aya has no CO-RE for Rust programs, so the offsets
//! are looked up here at load time and handed to the programs as globals.
use std::{collections::HashMap, path::Path};

use anyhow::{anyhow, bail, Context, Result};

/// What the dataplane's health check needs of this kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelLayout {
    /// Byte offsets.
    pub net_device_state: u32,
    pub net_device_ifindex: u32,
    pub xdp_buff_rxq: u32,
    pub xdp_rxq_info_dev: u32,
    /// Bit numbers in `net_device.state` (`enum netdev_state_t`).
    pub link_state_start: u32,
    pub link_state_nocarrier: u32,
    /// BTF type ids: `struct net_device`, and the kfunc `bpf_rdonly_cast`
    /// that lets the egress program read a member's device with plain
    /// loads (see `ipmp_common::KFUNC_RDONLY_CAST_PLACEHOLDER`); kernels
    /// before 6.2 have none.
    pub net_device_type: u32,
    pub rdonly_cast_func: Option<u32>,
}

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

impl KernelLayout {
    /// The running kernel's layout, read once per process.
    pub fn of_running_kernel() -> Result<&'static KernelLayout> {
        static LAYOUT: std::sync::OnceLock<KernelLayout> = std::sync::OnceLock::new();
        if let Some(layout) = LAYOUT.get() {
            return Ok(layout);
        }
        let layout = Self::from_file(Path::new(VMLINUX_BTF))?;
        Ok(LAYOUT.get_or_init(|| layout))
    }

    pub fn from_file(path: &Path) -> Result<KernelLayout> {
        let data = std::fs::read(path).with_context(|| {
            format!(
                "reading {} (ipmpd needs a kernel built with BTF, CONFIG_DEBUG_INFO_BTF)",
                path.display()
            )
        })?;
        Self::from_btf(&data)
            .with_context(|| format!("reading the kernel's layout from {}", path.display()))
    }

    pub fn from_btf(data: &[u8]) -> Result<KernelLayout> {
        let btf = Btf::parse(
            data,
            &["net_device", "xdp_buff", "xdp_rxq_info"],
            &["__LINK_STATE_START", "__LINK_STATE_NOCARRIER"],
            &["bpf_rdonly_cast"],
        )?;
        Ok(KernelLayout {
            net_device_state: btf.member_offset("net_device", "state")?,
            net_device_ifindex: btf.member_offset("net_device", "ifindex")?,
            xdp_buff_rxq: btf.member_offset("xdp_buff", "rxq")?,
            xdp_rxq_info_dev: btf.member_offset("xdp_rxq_info", "dev")?,
            link_state_start: btf.enum_value("__LINK_STATE_START")?,
            link_state_nocarrier: btf.enum_value("__LINK_STATE_NOCARRIER")?,
            net_device_type: btf.type_id("net_device")?,
            rdonly_cast_func: btf.type_id("bpf_rdonly_cast").ok(),
        })
    }
}

const BTF_MAGIC: u16 = 0xeb9f;
const KIND_STRUCT: u32 = 4;
const KIND_ENUM: u32 = 6;
const KIND_FUNC: u32 = 12;

/// The members (name to bit offset) and type ids of some structs, some
/// enumerators and the type ids of some functions of a BTF blob: just enough of the format to find a field. Only what is
/// asked for is kept (the kernel's BTF describes tens of thousands of
/// types).
struct Btf {
    structs: HashMap<String, HashMap<String, u32>>,
    enumerators: HashMap<String, u32>,
    /// Type ids of the structs and functions asked for.
    ids: HashMap<String, u32>,
}

impl Btf {
    fn parse(
        data: &[u8],
        structs: &[&str],
        enumerators: &[&str],
        functions: &[&str],
    ) -> Result<Btf> {
        let u32_at = |at: usize| -> Result<u32> {
            let bytes = data
                .get(at..at + 4)
                .ok_or_else(|| anyhow!("BTF cut short at byte {at}"))?;
            Ok(u32::from_le_bytes(bytes.try_into()?))
        };
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != BTF_MAGIC {
            bail!("not little-endian BTF");
        }
        let header = u32_at(4)? as usize;
        let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
        let (str_off, str_len) = (u32_at(16)? as usize, u32_at(20)? as usize);
        let strings = data
            .get(header + str_off..header + str_off + str_len)
            .ok_or_else(|| anyhow!("BTF string section out of bounds"))?;
        let name = |off: u32| -> String {
            let s = strings.get(off as usize..).unwrap_or_default();
            let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
            String::from_utf8_lossy(&s[..end]).into_owned()
        };
        let mut btf = Btf {
            structs: HashMap::new(),
            enumerators: HashMap::new(),
            ids: HashMap::new(),
        };
        let (mut at, end) = (header + type_off, header + type_off + type_len);
        // Type ids count from 1 (0 is void), in the order of the section.
        let mut id = 0;
        while at < end {
            id += 1;
            let (name_off, info) = (u32_at(at)?, u32_at(at + 4)?);
            let (vlen, kind, kind_flag) = (
                (info & 0xffff) as usize,
                (info >> 24) & 0x1f,
                info >> 31 == 1,
            );
            at += 12;
            match kind {
                KIND_STRUCT
                    if structs.contains(&name(name_off).as_str())
                        && !btf.structs.contains_key(&name(name_off)) =>
                {
                    let mut members = HashMap::new();
                    for i in 0..vlen {
                        let m = at + i * 12;
                        let offset = u32_at(m + 8)?;
                        let bits = if kind_flag {
                            offset & 0xff_ffff
                        } else {
                            offset
                        };
                        members.insert(name(u32_at(m)?), bits);
                    }
                    btf.structs.insert(name(name_off), members);
                    btf.ids.insert(name(name_off), id);
                }
                KIND_FUNC if functions.contains(&name(name_off).as_str()) => {
                    btf.ids.insert(name(name_off), id);
                }
                KIND_ENUM => {
                    for i in 0..vlen {
                        let e = at + i * 8;
                        let enumerator = name(u32_at(e)?);
                        if enumerators.contains(&enumerator.as_str()) {
                            btf.enumerators.insert(enumerator, u32_at(e + 4)?);
                        }
                    }
                }
                _ => {}
            }
            at += extra_bytes(kind, vlen)?;
        }
        Ok(btf)
    }

    /// Byte offset of `member` in `struct name`.
    fn member_offset(&self, name: &str, member: &str) -> Result<u32> {
        let bits = self
            .structs
            .get(name)
            .and_then(|members| members.get(member))
            .ok_or_else(|| {
                anyhow!("the kernel's BTF has no struct {name} with a field {member}")
            })?;
        if bits % 8 != 0 {
            bail!("{name}.{member} is a bit field");
        }
        Ok(bits / 8)
    }

    fn type_id(&self, name: &str) -> Result<u32> {
        self.ids
            .get(name)
            .copied()
            .ok_or_else(|| anyhow!("the kernel's BTF has no type or function {name}"))
    }

    fn enum_value(&self, name: &str) -> Result<u32> {
        self.enumerators
            .get(name)
            .copied()
            .ok_or_else(|| anyhow!("the kernel's BTF has no enumerator {name}"))
    }
}

/// Bytes that follow a type's 12-byte header, by kind (linux/btf.h).
fn extra_bytes(kind: u32, vlen: usize) -> Result<usize> {
    Ok(match kind {
        // INT, VAR, DECL_TAG
        1 | 14 | 17 => 4,
        // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
        2 | 7..=12 | 16 | 18 => 0,
        // ARRAY
        3 => 12,
        // STRUCT, UNION, DATASEC, ENUM64
        4 | 5 | 15 | 19 => vlen * 12,
        // ENUM, FUNC_PROTO
        6 | 13 => vlen * 8,
        _ => bail!("unknown BTF kind {kind}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob: an int, `struct s { int a; int b; }` with b at byte 8,
    /// a bit-field struct with kind_flag, `enum e { X = 0, Y = 2 }` and a
    /// function f: type ids 1 to 5.
    fn sample() -> Vec<u8> {
        let strings = b"\0int\0s\0a\0b\0e\0X\0Y\0t\0f\0".to_vec();
        let at = |s: &str| {
            let needle = format!("\0{s}\0");
            strings
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .unwrap() as u32
                + 1
        };
        let mut types = Vec::new();
        let mut put = |words: &[u32]| {
            for w in words {
                types.extend_from_slice(&w.to_le_bytes());
            }
        };
        put(&[at("int"), 1 << 24, 4, 32]);
        put(&[at("s"), (4 << 24) | 2, 16, at("a"), 1, 0, at("b"), 1, 64]);
        put(&[
            at("t"),
            (1 << 31) | (4 << 24) | 1,
            4,
            at("a"),
            1,
            (3 << 24) | 16,
        ]);
        put(&[at("e"), (6 << 24) | 2, 4, at("X"), 0, at("Y"), 2]);
        put(&[at("f"), 12 << 24, 0]);
        let mut blob = Vec::new();
        blob.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        blob.extend_from_slice(&[1, 0]);
        for w in [
            24,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            blob.extend_from_slice(&w.to_le_bytes());
        }
        blob.extend_from_slice(&types);
        blob.extend_from_slice(&strings);
        blob
    }

    fn parse(blob: &[u8]) -> Result<Btf> {
        Btf::parse(blob, &["s", "t"], &["X", "Y"], &["f"])
    }

    #[test]
    fn finds_members_and_enumerators() {
        let btf = parse(&sample()).unwrap();
        assert_eq!(btf.member_offset("s", "a").unwrap(), 0);
        assert_eq!(btf.member_offset("s", "b").unwrap(), 8);
        assert_eq!(btf.member_offset("t", "a").unwrap(), 2);
        assert_eq!(btf.enum_value("Y").unwrap(), 2);
        assert_eq!(btf.type_id("s").unwrap(), 2);
        assert_eq!(btf.type_id("t").unwrap(), 3);
        assert_eq!(btf.type_id("f").unwrap(), 5);
    }

    #[test]
    fn a_missing_field_is_named() {
        let btf = parse(&sample()).unwrap();
        let e = btf.member_offset("s", "c").unwrap_err().to_string();
        assert!(e.contains("struct s") && e.contains("field c"), "{e}");
        assert!(btf.enum_value("Z").is_err());
    }

    #[test]
    fn only_what_is_asked_for_is_kept() {
        let btf = Btf::parse(&sample(), &["t"], &["Y"], &[]).unwrap();
        assert!(btf.member_offset("s", "a").is_err());
        assert!(btf.type_id("f").is_err());
        assert!(btf.member_offset("t", "a").is_ok());
        assert!(btf.enum_value("X").is_err());
    }

    #[test]
    fn garbage_is_refused() {
        assert!(parse(b"not btf at all, not at all").is_err());
        let mut cut = sample();
        cut.truncate(30);
        assert!(parse(&cut).is_err());
    }

    #[test]
    fn the_running_kernel_has_what_the_dataplane_reads() {
        if !Path::new(VMLINUX_BTF).exists() {
            return;
        }
        let layout = KernelLayout::of_running_kernel().unwrap();
        // Fixed for as long as Linux has had them.
        assert_eq!(layout.link_state_start, 0);
        assert_eq!(layout.link_state_nocarrier, 2);
        assert_eq!(layout.net_device_state % 8, 0);
        assert_ne!(layout.net_device_state, layout.net_device_ifindex);
        assert_ne!(layout.net_device_type, 0);
        assert!(layout.rdonly_cast_func.is_some_and(|id| id != 0));
    }
}
