//! The kernel programs (built by build.rs for bpfel-unknown-none), with
//! their calls to kernel functions linked for the running kernel: aya 0.14
//! cannot link them itself.
use std::sync::OnceLock;

use anyhow::{ensure, Result};
use ipmp_common::{KFUNC_ABSENT, KFUNC_RDONLY_CAST_PLACEHOLDER};

use crate::kernel_layout::KernelLayout;

/// The kernel programs, built by build.rs for bpfel-unknown-none.
static PROGRAMS: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/ipmp"));

/// The programs with their calls to kernel functions linked for `layout`
/// (see `ipmp_common::KFUNC_RDONLY_CAST_PLACEHOLDER`): the kernel's id of
/// `bpf_rdonly_cast` written in, or, where it has none, a harmless
/// instruction in the branch the verifier then never walks. Made once per
/// process and variant.
pub fn programs(layout: &KernelLayout) -> Result<&'static [u8]> {
    static LINKED: OnceLock<Vec<u64>> = OnceLock::new();
    static WITHOUT: OnceLock<Vec<u64>> = OnceLock::new();
    let (cell, call) = match layout.rdonly_cast_func {
        Some(id) => {
            let mut call = KFUNC_RDONLY_CAST_PLACEHOLDER;
            call[4..].copy_from_slice(&id.to_le_bytes());
            (&LINKED, call)
        }
        None => (&WITHOUT, KFUNC_ABSENT),
    };
    if let Some(words) = cell.get() {
        return Ok(words_as_bytes(words));
    }
    // Held as 8-byte words: the ELF parser wants its input aligned.
    let mut words = vec![0u64; PROGRAMS.len().div_ceil(8)];
    let bytes = words_as_bytes_mut(&mut words);
    bytes[..PROGRAMS.len()].copy_from_slice(PROGRAMS);
    let linked = replace_instructions(
        &mut bytes[..PROGRAMS.len()],
        KFUNC_RDONLY_CAST_PLACEHOLDER,
        call,
    );
    ensure!(
        linked > 0,
        "the eBPF object has no call to bpf_rdonly_cast to link: it was not built from this source"
    );
    Ok(words_as_bytes(cell.get_or_init(|| words)))
}

/// Replaces every instruction of `object` that is `placeholder` (8-byte
/// aligned, as instructions are) with `with`; returns how many.
fn replace_instructions(object: &mut [u8], placeholder: [u8; 8], with: [u8; 8]) -> usize {
    let mut replaced = 0;
    for instruction in object.chunks_exact_mut(8) {
        if instruction == placeholder {
            instruction.copy_from_slice(&with);
            replaced += 1;
        }
    }
    replaced
}

fn words_as_bytes(words: &[u64]) -> &[u8] {
    // SAFETY: any u64 is 8 initialised bytes; the slice covers exactly them.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast(), words.len() * 8) }
}

fn words_as_bytes_mut(words: &mut [u64]) -> &mut [u8] {
    // SAFETY: as above, and every byte pattern is a valid u64.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len() * 8) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kfunc_calls_are_linked_at_instruction_boundaries_only() {
        let call = KFUNC_RDONLY_CAST_PLACEHOLDER;
        let linked = [0x85, 0x20, 0, 0, 0x34, 0x12, 0, 0];
        let mut object = vec![0u8; 8];
        object.extend_from_slice(&call);
        // The same bytes straddling two instructions are no call.
        object.extend_from_slice(&[0; 4]);
        object.extend_from_slice(&call);
        object.extend_from_slice(&[0; 4]);
        object.extend_from_slice(&call);
        assert_eq!(replace_instructions(&mut object, call, linked), 2);
        assert_eq!(object[8..16], linked);
        assert_eq!(object[20..28], call, "a misaligned copy was changed");
        assert_eq!(object[32..40], linked);
    }

    #[test]
    fn the_programs_carry_the_call_to_link() {
        let mut object = PROGRAMS.to_vec();
        let call = KFUNC_RDONLY_CAST_PLACEHOLDER;
        assert!(replace_instructions(&mut object, call, KFUNC_ABSENT) > 0);
    }
}
