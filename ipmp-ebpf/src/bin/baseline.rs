//! Empty TC and XDP programs: the benchmark's baseline, measured in the same
//! run as ipmp's programs; and a TC program that only redirects, the floor
//! of any program that sends a packet on (the helper call is most of it).
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod programs {
    use aya_ebpf::{
        bindings::{bpf_redir_neigh, bpf_redir_neigh__bindgen_ty_1, xdp_action, TC_ACT_OK},
        helpers::generated::bpf_redirect_neigh,
        macros::{classifier, xdp},
        programs::{TcContext, XdpContext},
    };

    #[classifier]
    pub fn baseline_tc(_ctx: TcContext) -> i32 {
        TC_ACT_OK
    }

    /// `bpf_redirect_neigh` to interface 1 with an IPv4 next hop, as the
    /// egress program redirects to an on-link destination.
    #[classifier]
    pub fn baseline_tc_redirect(_ctx: TcContext) -> i32 {
        // 8-aligned: the stack refuses misaligned stores (see build.rs).
        #[repr(C, align(8))]
        struct Params(bpf_redir_neigh);
        let mut params = Params(bpf_redir_neigh {
            nh_family: 2,
            __bindgen_anon_1: bpf_redir_neigh__bindgen_ty_1 {
                ipv4_nh: u32::from_ne_bytes([192, 0, 2, 10]),
            },
        });
        // SAFETY: plain helper call with a valid parameter block of its size.
        unsafe {
            bpf_redirect_neigh(
                1,
                &mut params.0 as *mut bpf_redir_neigh as *mut _,
                core::mem::size_of::<bpf_redir_neigh>() as i32,
                0,
            ) as i32
        }
    }

    #[xdp]
    pub fn baseline_xdp(_ctx: XdpContext) -> u32 {
        xdp_action::XDP_PASS
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        loop {}
    }

    #[unsafe(link_section = "license")]
    #[unsafe(no_mangle)]
    static LICENSE: [u8; 4] = *b"GPL\0";
}

#[cfg(not(target_arch = "bpf"))]
fn main() {}
