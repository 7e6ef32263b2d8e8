//! Measures the kernel programs with BPF_PROG_TEST_RUN against empty TC and
//! XDP programs in the same run; prints one JSON object. Run by
//! `cargo xtask bench` (root).
use anyhow::{Context, Result};
use aya::Ebpf;
use ipmp::{
    dataplane::{self, GroupDataplane},
    policy::flow_table::next_table,
};
use ipmp_common::{FlowTable, Member};

static BASELINE: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/baseline"));
const REPEAT: u32 = 1_000_000;
const ROUNDS: usize = 5;

fn main() -> Result<()> {
    let pin_dir =
        std::path::PathBuf::from(format!("/sys/fs/bpf/ipmp-bench-{}", std::process::id()));
    let result = measure(&pin_dir);
    let _ = std::fs::remove_dir_all(&pin_dir);
    println!("{}", serde_json::to_string(&result?)?);
    Ok(())
}

fn measure(pin_dir: &std::path::Path) -> Result<serde_json::Value> {
    dataplane::namespace_pin_dir(pin_dir)?;
    let mut group = GroupDataplane::load(pin_dir)?;
    for slot in 0..3u8 {
        let mut m = Member {
            ifindex: 1,
            ..Member::default()
        };
        m.name[0] = b'a' + slot;
        group.set_member(slot, &m)?;
    }
    group.write_flow_table(&next_table(&FlowTable::EMPTY, &[0, 1, 2]))?;
    group.load_member("a", 0)?;
    // Echo answering on, for the data address the echo packet goes to.
    group.set_group(&ipmp_common::GroupConfig {
        answer_echo: 1,
        ..Default::default()
    })?;
    group.bind_data_address(ipmp_common::data_address_key_v4([192, 0, 2, 200]), 0)?;
    let mut baseline = Ebpf::load(BASELINE).context("loading the baseline programs")?;
    for (name, kind) in [("baseline_tc", "tc"), ("baseline_xdp", "xdp")] {
        let prog = baseline
            .program_mut(name)
            .context("baseline program missing")?;
        match kind {
            "tc" => <&mut aya::programs::SchedClassifier>::try_from(prog)?.load()?,
            _ => <&mut aya::programs::Xdp>::try_from(prog)?.load()?,
        }
    }
    let packet = udp4_packet();
    let echo = echo4_packet();
    // Interleave the rounds so both sides see the same machine state; keep
    // the best round of each (least disturbed by other work).
    let mut best = [f64::MAX; 5];
    for _ in 0..ROUNDS {
        let runs = [
            dataplane::test_run(&mut baseline, "baseline_tc", &packet, REPEAT)?,
            group.test_run(None, &packet, REPEAT)?,
            dataplane::test_run(&mut baseline, "baseline_xdp", &packet, REPEAT)?,
            group.test_run(Some("a"), &packet, REPEAT)?,
            group.test_run(Some("a"), &echo, REPEAT)?,
        ];
        for (b, r) in best.iter_mut().zip(runs.iter()) {
            *b = b.min(r.duration.as_nanos() as f64);
        }
    }
    Ok(serde_json::json!({
        "repeat": REPEAT,
        "rounds": ROUNDS,
        "empty_tc_ns": best[0],
        "egress_ns": best[1],
        "empty_xdp_ns": best[2],
        "member_xdp_pass_ns": best[3],
        "member_xdp_echo_answer_ns": best[4],
    }))
}

/// A 98-byte ICMP echo request (as ping sends) from a peer to the data
/// address.
fn echo4_packet() -> Vec<u8> {
    let mut p = vec![0u8; 98];
    p[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    p[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    p[12..14].copy_from_slice(&[0x08, 0x00]);
    p[14] = 0x45;
    p[16..18].copy_from_slice(&84u16.to_be_bytes());
    p[22] = 64;
    p[23] = 1;
    p[26..30].copy_from_slice(&[192, 0, 2, 10]);
    p[30..34].copy_from_slice(&[192, 0, 2, 200]);
    p[34] = 8;
    p
}

/// A 64-byte IPv4 UDP frame from the data address to a peer.
fn udp4_packet() -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    p[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    p[12..14].copy_from_slice(&[0x08, 0x00]);
    p[14] = 0x45;
    p[16..18].copy_from_slice(&50u16.to_be_bytes());
    p[22] = 64;
    p[23] = 17;
    p[26..30].copy_from_slice(&[192, 0, 2, 200]);
    p[30..34].copy_from_slice(&[192, 0, 2, 10]);
    p[34..36].copy_from_slice(&40000u16.to_be_bytes());
    p[36..38].copy_from_slice(&9000u16.to_be_bytes());
    p[38..40].copy_from_slice(&30u16.to_be_bytes());
    p
}
