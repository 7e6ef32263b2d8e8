//! Builds the kernel programs (ipmp-ebpf) for bpfel-unknown-none on the
//! nightly toolchain; the objects land in OUT_DIR and are embedded in ipmpd.
fn main() -> anyhow::Result<()> {
    // aya-build watches ipmp-ebpf; the shared map layouts live next door.
    println!("cargo:rerun-if-changed=../ipmp-common/src");
    // aya-build repeats everything the nested cargo prints as a warning:
    // keep it to real diagnostics.
    std::env::set_var("CARGO_TERM_QUIET", "true");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "ipmp-ebpf",
            root_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../ipmp-ebpf"),
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
