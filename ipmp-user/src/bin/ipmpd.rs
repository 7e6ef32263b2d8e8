//! ipmpd: the IPMP daemon.
use std::{io::IsTerminal, path::PathBuf, process::ExitCode};

use clap::{CommandFactory, Parser};
use ipmp::{
    config::{printable, Config, DEFAULT_CONFIG_PATH},
    daemon::{self, Overrides},
};

/// IP multipathing daemon: watches the members of each IPMP group and keeps
/// the eBPF dataplane sending through the working ones.
#[derive(Parser)]
#[command(name = "ipmpd", version)]
struct Args {
    /// Configuration file.
    #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// Control socket (overrides daemon.control_socket).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Pin directory on bpffs (overrides daemon.pin_dir).
    #[arg(long)]
    pin_dir: Option<PathBuf>,
    /// Serve Prometheus metrics on ADDR (overrides daemon.metrics_listen).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Validate the configuration and exit: 0 valid, 1 invalid.
    #[arg(long)]
    check: bool,
    /// Remove every group found in the pin directory (group interfaces,
    /// programs, rules, test addresses, pins), put back the sysctls ipmpd
    /// changed, and exit; for when no ipmpd runs (else: ipmpctl teardown).
    #[arg(long, conflicts_with = "check")]
    teardown: bool,
    /// Print the ipmpd(8) man page (roff) and exit.
    #[arg(long, hide = true)]
    manpage: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.manpage {
        return match clap_mangen::Man::new(Args::command())
            .section("8")
            .render(&mut std::io::stdout())
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ipmpd: {e}");
                ExitCode::from(1)
            }
        };
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ipmpd: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    if args.check {
        // What the file alone cannot tell: the interfaces it names.
        if let Err(problems) = runtime.block_on(daemon::check_system(&config)) {
            eprintln!("{}: {}", args.config.display(), printable(&problems));
            return ExitCode::from(1);
        }
        println!("{}: configuration is valid", args.config.display());
        return ExitCode::SUCCESS;
    }
    let overrides = Overrides {
        socket: args.socket,
        pin_dir: args.pin_dir,
        metrics: args.metrics,
    };
    let done = if args.teardown {
        runtime.block_on(daemon::teardown(&config, overrides))
    } else {
        runtime.block_on(daemon::run(&args.config, config, overrides))
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipmpd: {}", printable(&format!("{e:#}")));
            ExitCode::from(1)
        }
    }
}
