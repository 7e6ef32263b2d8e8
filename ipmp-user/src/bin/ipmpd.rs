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
    /// Log to syslog, facility daemon, instead of stderr (under systemd
    /// ipmpd logs to the journal by itself).
    #[arg(long)]
    syslog: bool,
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
    init_logging(args.syslog);
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

/// Logs go to the journal, with in.mpathd's severities as priorities, when
/// systemd connected stderr to it (JOURNAL_STREAM names stderr's device and
/// inode); to syslog (facility daemon) with `--syslog`; to stderr otherwise
/// (foreground, tests).
fn init_logging(syslog: bool) {
    use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer};
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let journal = stderr_is_journal()
        .then(tracing_journald::layer)
        .and_then(Result::ok);
    let registry = tracing_subscriber::registry();
    match journal {
        None if syslog => registry
            .with(ipmp::syslog::Syslog::open().with_filter(filter()))
            .init(),
        Some(journal) => registry
            .with(
                journal
                    .with_syslog_identifier("ipmpd".into())
                    .with_filter(filter()),
            )
            .init(),
        None => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_target(false)
                    .with_filter(filter()),
            )
            .init(),
    }
}

/// systemd's test (sd_journal_stream_fd's documentation): JOURNAL_STREAM is
/// `device:inode` of the stream stderr is, not of one a parent had.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(wanted) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stderr) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    wanted.to_string_lossy() == format!("{}:{}", stderr.dev(), stderr.ino())
}
