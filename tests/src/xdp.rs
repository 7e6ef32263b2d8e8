//! A native-mode XDP_PASS program on an interface, as a physical wire
//! takes XDP_TX frames: a veth peer needs one for native XDP_TX from the
//! other end to arrive (TOOLCHAIN.md).
use std::{ffi::CString, path::PathBuf};

use anyhow::{bail, Result};

use crate::netns::{run, unique, Netns};

const BPF_PROG_LOAD: i64 = 5;
const BPF_OBJ_PIN: i64 = 6;
const BPF_PROG_TYPE_XDP: u32 = 6;

/// `r0 = XDP_PASS; exit`.
const XDP_PASS_PROGRAM: [u64; 2] = [
    u64::from_le_bytes([0xb7, 0, 0, 0, 2, 0, 0, 0]),
    u64::from_le_bytes([0x95, 0, 0, 0, 0, 0, 0, 0]),
];

fn bpf(cmd: i64, attr: &mut [u8; 128]) -> Result<i64> {
    // SAFETY: attr is a zero-padded union bpf_attr of the size passed.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if rc < 0 {
        bail!("bpf({cmd}): {}", std::io::Error::last_os_error());
    }
    Ok(rc)
}

/// Attaches a native XDP_PASS program to `ifname` in `ns`; it goes with
/// the interface.
pub fn attach_native_pass(ns: &Netns, ifname: &str) -> Result<()> {
    let license = CString::new("GPL")?;
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&BPF_PROG_TYPE_XDP.to_ne_bytes());
    attr[4..8].copy_from_slice(&(XDP_PASS_PROGRAM.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(XDP_PASS_PROGRAM.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    let fd = bpf(BPF_PROG_LOAD, &mut attr)? as i32;
    // `ip` attaches a program it finds pinned; the pin goes at once.
    let pin = PathBuf::from(format!("/sys/fs/bpf/{}", unique("xdppass")));
    let path = CString::new(pin.to_string_lossy().as_bytes())?;
    let mut attr = [0u8; 128];
    attr[0..8].copy_from_slice(&(path.as_ptr() as u64).to_ne_bytes());
    attr[8..12].copy_from_slice(&(fd as u32).to_ne_bytes());
    let pinned = bpf(BPF_OBJ_PIN, &mut attr);
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    pinned?;
    let attached = run(ns.command("ip").args([
        "link",
        "set",
        "dev",
        ifname,
        "xdpdrv",
        "pinned",
        &pin.to_string_lossy(),
    ]));
    std::fs::remove_file(&pin)?;
    attached.map(drop)
}
