//! Empty TC and XDP programs: the benchmark's baseline, measured in the same
//! run as ipmp's programs; and a TC program that only redirects, the floor
//! of any program that sends a packet on (the helper call is most of it).
//! The throughput bench also attaches the last two in place of ipmp's
//! (the redirect on the group interface, the empty program first on the
//! member): the design's floor, two device hops with programs doing
//! nothing else.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod programs {
    use aya_ebpf::{
        bindings::{bpf_redir_neigh, bpf_redir_neigh__bindgen_ty_1, xdp_action, TC_ACT_OK},
        helpers::generated::bpf_redirect_neigh,
        macros::{classifier, xdp},
        programs::{TcContext, XdpContext},
        Global,
    };

    /// Where `baseline_tc_redirect` sends, unless set at load time:
    /// interface 1 (lo), next hop 192.0.2.10 (its bytes in network order).
    #[unsafe(no_mangle)]
    static REDIRECT_IFINDEX: Global<u32> = Global::new(1);
    #[unsafe(no_mangle)]
    static REDIRECT_NEXT_HOP_V4: Global<[u8; 4]> = Global::new([192, 0, 2, 10]);

    #[classifier]
    pub fn baseline_tc(_ctx: TcContext) -> i32 {
        TC_ACT_OK
    }

    /// `bpf_redirect_neigh` with an IPv4 next hop, as the egress program
    /// redirects to an on-link destination.
    #[classifier]
    pub fn baseline_tc_redirect(_ctx: TcContext) -> i32 {
        // 8-aligned: the stack refuses misaligned stores (see build.rs).
        #[repr(C, align(8))]
        struct Params(bpf_redir_neigh);
        let mut params = Params(bpf_redir_neigh {
            nh_family: 2,
            __bindgen_anon_1: bpf_redir_neigh__bindgen_ty_1 {
                ipv4_nh: u32::from_ne_bytes(REDIRECT_NEXT_HOP_V4.load()),
            },
        });
        // SAFETY: plain helper call with a valid parameter block of its size.
        unsafe {
            bpf_redirect_neigh(
                REDIRECT_IFINDEX.load(),
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
