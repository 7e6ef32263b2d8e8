//! Empty TC and XDP programs: the benchmark's baseline, measured in the same
//! run as ipmp's programs.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod programs {
    use aya_ebpf::{
        bindings::{xdp_action, TC_ACT_OK},
        macros::{classifier, xdp},
        programs::{TcContext, XdpContext},
    };

    #[classifier]
    pub fn baseline_tc(_ctx: TcContext) -> i32 {
        TC_ACT_OK
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
