//! Internet checksums (RFC 1071): of the requests XDP answers, and of the
//! answers it writes in place.
use crate::parse::{ensure, Frame};

/// RFC 1624's incremental update: the checksum after one 16-bit word of
/// the data changed from `old` to `new`.
#[inline(always)]
pub fn update(check: u16, old: u16, new: u16) -> u16 {
    !fold(u32::from(!check) + u32::from(!old) + u32::from(new))
}

/// Adds `bytes` to a running one's-complement sum, as big-endian words.
#[inline(always)]
pub fn add<const N: usize>(mut sum: u32, bytes: &[u8; N]) -> u32 {
    let mut i = 0;
    while i + 1 < N {
        sum += u32::from(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
        i += 2;
    }
    sum
}

/// Folds the carries of a one's-complement sum into 16 bits.
#[inline(always)]
pub fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// 4-byte words summed at most by [`frame_sum`]: an echo message of up to
/// 1500 bytes (a standard MTU); longer ones are left to the kernel.
const MAX_SUM_WORDS: usize = 375;

/// The one's-complement sum (unfolded, for [`fold64`]) of the `len` bytes
/// of `frame` at `offset`, as big-endian 16-bit words; `Err` when the
/// frame does not hold them or they are more than [`MAX_SUM_WORDS`] words.
#[inline(always)]
pub fn frame_sum(frame: Frame, offset: usize, len: usize) -> Result<u64, ()> {
    // Each read checks the packet bounds itself: a check of the whole
    // length here would let the compiler drop those, and the verifier
    // needs them.
    ensure(len <= MAX_SUM_WORDS * 4)?;
    let mut total: u64 = 0;
    let mut done = 0;
    for _ in 0..MAX_SUM_WORDS {
        if done + 4 > len {
            break;
        }
        // Bytes read in place (a copy of the word would be assembled and
        // taken apart again).
        let w = frame.header::<[u8; 4]>(offset + done)?;
        total += u64::from(u16::from_be_bytes([w[0], w[1]]))
            + u64::from(u16::from_be_bytes([w[2], w[3]]));
        done += 4;
    }
    if done + 2 <= len {
        let w = frame.header::<[u8; 2]>(offset + done)?;
        total += u64::from(u16::from_be_bytes([w[0], w[1]]));
        done += 2;
    }
    if done < len {
        // An odd last byte is padded with zero.
        total += u64::from(*frame.header::<u8>(offset + done)?) << 8;
    }
    Ok(total)
}

/// Folds a 64-bit one's-complement sum into 16 bits.
#[inline(always)]
pub fn fold64(mut total: u64) -> u16 {
    total = (total & 0xffff_ffff) + (total >> 32);
    total = (total & 0xffff) + (total >> 16);
    total = (total & 0xffff) + (total >> 16);
    total = (total & 0xffff) + (total >> 16);
    total as u16
}
