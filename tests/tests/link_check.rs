//! The egress program's own link check, run in the kernel with
//! BPF_PROG_TEST_RUN on a real veth member: a member whose carrier goes,
//! or that is set down, is taken out on the next packet, with the reason,
//! and carries traffic again only once put back. Both ways the programs
//! are loaded: as this kernel gets them (plain loads through
//! `bpf_rdonly_cast`) and as a kernel before 6.2 does (helper reads).
use std::{path::PathBuf, process::Command};

use anyhow::{ensure, Context, Result};
use ipmp::{
    dataplane::GroupDataplane, kernel_layout::KernelLayout, policy::flow_table::next_table,
};
use ipmp_common::{FlowTable, Member, TAKEN_OUT_ADMIN_DOWN, TAKEN_OUT_NO_CARRIER};
use ipmp_tests::netns::{ifindex, unique, Netns};

const TC_ACT_SHOT: u32 = 2;
const TC_ACT_REDIRECT: u32 = 7;

/// A UDP datagram from the data address to a peer on the link.
fn datagram() -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2]);
    p[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    p[14] = 0x45;
    p[16..18].copy_from_slice(&50u16.to_be_bytes());
    p[22] = 64;
    p[23] = 17;
    p[26..30].copy_from_slice(&[192, 0, 2, 200]);
    p[30..34].copy_from_slice(&[192, 0, 2, 10]);
    p[34..38].copy_from_slice(&[0x9c, 0x40, 0x23, 0x28]);
    p
}

/// The group's pins, removed when the test ends, however it ends.
struct Pins(PathBuf);

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let status = Command::new("ip").args(args).status()?;
    ensure!(status.success(), "ip {args:?} failed");
    Ok(())
}

/// Member `m0` (slot 0, the only one in the flow table) on a veth whose
/// other end is `p0`, checked through the programs loaded for `layout`.
fn member_is_taken_out_and_put_back(layout: &'static KernelLayout) -> Result<()> {
    let ns = Netns::create(&unique("lc"))?;
    ns.ip("link add m0 type veth peer name p0")?;
    ns.ip("link set m0 up")?;
    ns.ip("link set p0 up")?;
    ns.enter(move || {
        let pins = Pins(PathBuf::from(format!("/sys/fs/bpf/{}", unique("lc"))));
        let mut dp = GroupDataplane::load_for(&pins.0, layout)?;
        let index = ifindex("m0")?;
        let mut member = Member {
            ifindex: index,
            ..Member::default()
        };
        member.name[..2].copy_from_slice(b"m0");
        dp.set_member(0, &member)?;
        dp.write_flow_table(&next_table(&FlowTable::EMPTY, &[0]))?;
        ensure!(dp.locate_member(0, index)?, "m0's device was not located");
        let packet = datagram();
        let send = |dp: &mut GroupDataplane| -> Result<u32> {
            Ok(dp.test_run(None, &packet, 1)?.return_value)
        };
        ensure!(send(&mut dp)? == TC_ACT_REDIRECT, "m0 up: not sent");
        ensure!(dp.taken_out(0)? == 0, "m0 up, yet taken out");

        ip(&["link", "set", "p0", "down"])?;
        ensure!(
            send(&mut dp)? == TC_ACT_SHOT,
            "m0 without carrier: still sent"
        );
        let why = dp.taken_out(0)?;
        ensure!(why == TAKEN_OUT_NO_CARRIER, "carrier loss read as {why}");
        ip(&["link", "set", "p0", "up"])?;
        ensure!(
            send(&mut dp)? == TC_ACT_SHOT,
            "back up, but put back by nobody"
        );
        dp.put_back(0)?;
        ensure!(send(&mut dp)? == TC_ACT_REDIRECT, "put back: not sent");

        ip(&["link", "set", "m0", "down"])?;
        ensure!(send(&mut dp)? == TC_ACT_SHOT, "m0 down: still sent");
        let why = dp.taken_out(0)?;
        ensure!(why == TAKEN_OUT_ADMIN_DOWN, "admin down read as {why}");
        Ok(())
    })
    .context("the link check")
}

#[test]
fn the_link_check_takes_a_member_out_by_plain_loads() -> Result<()> {
    let layout = KernelLayout::of_running_kernel()?;
    ensure!(
        layout.rdonly_cast_func.is_some(),
        "this kernel has no bpf_rdonly_cast"
    );
    member_is_taken_out_and_put_back(layout)
}

#[test]
fn the_link_check_takes_a_member_out_on_kernels_before_6_2() -> Result<()> {
    let layout = Box::leak(Box::new(KernelLayout {
        rdonly_cast_func: None,
        ..*KernelLayout::of_running_kernel()?
    }));
    member_is_taken_out_and_put_back(layout)
}
