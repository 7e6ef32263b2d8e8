//! ipmpctl: the operator's CLI (ipmpstat and if_mpadm in one). Invoked as
//! `ipmpstat`, it takes ipmpstat's arguments directly.
use std::{
    io::Write,
    net::IpAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Instant,
};

use clap::{ArgGroup, Args, CommandFactory, Parser, Subcommand};
use ipmp::{
    config::printable,
    control::{self, ClientError, Request, Response, DEFAULT_SOCKET, SOCKET_ENV},
    convert::{self, SolarisFiles},
    ipmpstat::{self, Fields, Mode, OutputError, OutputOptions, Rendered},
};

/// Exit status: the request was refused.
const EXIT_REFUSED: u8 = 1;
/// Exit status: ipmpd did not answer.
const EXIT_NO_DAEMON: u8 = 3;

#[derive(Parser)]
#[command(
    name = "ipmpctl",
    version,
    about = "Control and observe IPMP groups (ipmpstat and if_mpadm in one)"
)]
struct Cli {
    /// ipmpd's control socket.
    #[arg(long, global = true, env = SOCKET_ENV, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show groups, interfaces (members) and their state, like ipmpstat.
    Stat(StatArgs),
    /// Follow state changes live, one line each (the events ipmpd logs).
    Events {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Take a member offline (if_mpadm -d): its traffic moves to the others.
    /// Refused unless another member of its group is usable.
    Offline { interface: String },
    /// Bring an offline member back online (if_mpadm -r).
    Online { interface: String },
    /// Make ipmpd read its configuration again (as SIGHUP does); an invalid
    /// file is refused with its problems and the running one stays.
    Reload,
    /// Remove every group interface, program, pin and address ipmpd created; ipmpd exits.
    Teardown,
    /// Print shell completions for ipmpctl.
    Completions { shell: clap_complete::Shell },
    /// Print the ipmpctl(8) man page (roff).
    #[command(hide = true)]
    Manpage,
    /// Turn Solaris /etc/hostname.* and /etc/hostname6.* files (and
    /// /etc/default/mpathd) into
    /// ipmp's TOML configuration, printed on standard output.
    Convert {
        /// /etc/hosts, for the host names the files use.
        #[arg(long, value_name = "FILE")]
        hosts: Option<PathBuf>,
        /// /etc/default/mpathd (FAILURE_DETECTION_TIME, FAILBACK).
        #[arg(long, value_name = "FILE")]
        mpathd: Option<PathBuf>,
        /// hostname.IF and hostname6.IF files; the interface name comes
        /// from the file name.
        #[arg(required = true, value_name = "hostname.IF")]
        files: Vec<PathBuf>,
    },
}

#[derive(Args)]
#[command(group(ArgGroup::new("mode").required(true).args(["group", "interface", "address", "target", "probe"])))]
struct StatArgs {
    /// Groups: GROUP, GROUPNAME, STATE, FDT, INTERFACES.
    #[arg(short = 'g')]
    group: bool,
    /// Interfaces: INTERFACE, ACTIVE, GROUP, FLAGS, LINK, PROBE, STATE.
    #[arg(short = 'i')]
    interface: bool,
    /// Data addresses: ADDRESS, STATE, GROUP, INBOUND, OUTBOUND.
    #[arg(short = 'a')]
    address: bool,
    /// Probe targets: INTERFACE, MODE, TESTADDR, TARGETS.
    #[arg(short = 't')]
    target: bool,
    /// Probes as they happen, until interrupted: TIME, INTERFACE, PROBE,
    /// NETRTT, RTT, RTTAVG, TARGET, RTTDEV.
    #[arg(short = 'p')]
    probe: bool,
    /// Numeric output: addresses are not looked up as host names.
    #[arg(short = 'n')]
    numeric: bool,
    /// Fields to show, comma-separated, or "all".
    #[arg(short = 'o', value_name = "FIELD,...|all")]
    output: Option<String>,
    /// Machine-parseable: colon-separated, no header (needs -o).
    #[arg(short = 'P')]
    parseable: bool,
    /// One JSON document.
    #[arg(long)]
    json: bool,
}

/// `if_mpadm -d IF` / `if_mpadm -r IF` are `ipmpctl offline|online IF`.
#[derive(Parser)]
#[command(
    name = "if_mpadm",
    version,
    about = "Take IPMP member interfaces offline and bring them back"
)]
#[command(group(ArgGroup::new("action").required(true).args(["offline", "online"])))]
struct IfMpadmCli {
    #[arg(long, env = SOCKET_ENV, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Take INTERFACE offline.
    #[arg(short = 'd', value_name = "INTERFACE")]
    offline: Option<String>,
    /// Bring INTERFACE back online.
    #[arg(short = 'r', value_name = "INTERFACE")]
    online: Option<String>,
}

/// `ipmpstat` is `ipmpctl stat`.
#[derive(Parser)]
#[command(name = "ipmpstat", version, about = "Show IPMP groups and interfaces")]
struct IpmpstatCli {
    #[arg(long, env = SOCKET_ENV, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    #[command(flatten)]
    stat: StatArgs,
}

fn main() -> ExitCode {
    let invoked_as = std::env::args_os()
        .next()
        .and_then(|a| {
            Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let (socket, command) = if invoked_as == "ipmpstat" {
        let cli = IpmpstatCli::parse();
        (cli.socket, Command::Stat(cli.stat))
    } else if invoked_as == "if_mpadm" {
        let cli = IfMpadmCli::parse();
        let command = match (cli.offline, cli.online) {
            (Some(interface), _) => Command::Offline { interface },
            (_, Some(interface)) => Command::Online { interface },
            _ => unreachable!("clap requires -d or -r"),
        };
        (cli.socket, command)
    } else {
        let cli = Cli::parse();
        (cli.socket, cli.command)
    };
    match command {
        Command::Stat(args) => stat(&socket, &args),
        Command::Events { json } => events(&socket, json),
        Command::Offline { interface } => change(&socket, Request::Offline { interface }),
        Command::Online { interface } => change(&socket, Request::Online { interface }),
        Command::Reload => change(&socket, Request::Reload),
        Command::Teardown => change(&socket, Request::Teardown),
        Command::Convert {
            hosts,
            mpathd,
            files,
        } => convert(hosts, mpathd, files),
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "ipmpctl", &mut text);
            exit_code(print_out(&text))
        }
        Command::Manpage => manpage(Cli::command()),
    }
}

fn manpage(command: clap::Command) -> ExitCode {
    let mut text = Vec::new();
    match clap_mangen::Man::new(command)
        .section("8")
        .render(&mut text)
    {
        Ok(()) => exit_code(print_out(&text)),
        Err(e) => {
            eprintln!("ipmpctl: {e}");
            ExitCode::from(EXIT_REFUSED)
        }
    }
}

/// The exit status after [`print_out`]: 0 once it all went out.
fn exit_code(printed: Result<(), ExitCode>) -> ExitCode {
    printed.err().unwrap_or(ExitCode::SUCCESS)
}

/// Writes `bytes` to standard output. A reader that went away (`| head`)
/// ends ipmpctl quietly with status 0; any other failure (a full disk,
/// `> /dev/full`) is said, with status 1.
fn print_out(bytes: &[u8]) -> Result<(), ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("ipmpctl: cannot write to standard output: {e}");
            Err(ExitCode::from(EXIT_REFUSED))
        }
    }
}

fn convert(hosts: Option<PathBuf>, mpathd: Option<PathBuf>, files: Vec<PathBuf>) -> ExitCode {
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map_err(|e| eprintln!("ipmpctl convert: cannot read {}: {e}", path.display()))
    };
    let (mut hostname_files, mut hostname6_files) = (Vec::new(), Vec::new());
    for path in &files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (list, interface) = match (
            name.strip_prefix("hostname."),
            name.strip_prefix("hostname6."),
        ) {
            (Some(interface), _) => (&mut hostname_files, interface),
            (_, Some(interface)) => (&mut hostname6_files, interface),
            _ => {
                eprintln!(
                    "ipmpctl convert: {} is not a hostname.IF or hostname6.IF file",
                    path.display()
                );
                return ExitCode::from(2);
            }
        };
        let Ok(text) = read(path) else {
            return ExitCode::from(EXIT_REFUSED);
        };
        list.push((interface.to_string(), text));
    }
    let optional = |p: Option<PathBuf>| p.map(|p| read(&p)).transpose();
    let (Ok(hosts), Ok(mpathd)) = (optional(hosts), optional(mpathd)) else {
        return ExitCode::from(EXIT_REFUSED);
    };
    match convert::convert(&SolarisFiles {
        hostname_files,
        hostname6_files,
        hosts,
        mpathd,
    }) {
        Ok(converted) => {
            for note in converted.notes {
                eprintln!("ipmpctl convert: note: {note}");
            }
            exit_code(print_out(converted.toml.as_bytes()))
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_REFUSED)
        }
    }
}

fn stat(socket: &Path, args: &StatArgs) -> ExitCode {
    let mode = match (args.group, args.interface, args.address, args.target) {
        (true, ..) => Mode::Group,
        (_, true, ..) => Mode::Interface,
        (_, _, true, _) => Mode::Address,
        (.., true) => Mode::Target,
        _ => Mode::Probe,
    };
    let fields = args
        .output
        .as_deref()
        .map_or(Fields::Default, Fields::from_arg);
    let mut opts = OutputOptions {
        fields,
        parseable: args.parseable,
        json: args.json,
        ..OutputOptions::default()
    };
    // As ipmpstat: host names unless -n; JSON is for programs, numeric.
    let resolve = !args.numeric && !args.json;
    if mode == Mode::Probe {
        return probes(socket, &opts, resolve);
    }
    let status = match call(socket, &Request::Status) {
        Ok(Response::Status(s)) => s,
        Ok(other) => return refused(&other),
        Err(code) => return code,
    };
    if resolve {
        opts.names = ipmpstat::addresses(&status)
            .into_iter()
            .filter_map(|a| Some((a, host_name(a)?)))
            .collect();
    }
    match ipmpstat::render(&status, mode, &opts) {
        Ok(out) => exit_code(print_rendered(out)),
        Err(e) => output_error(&e),
    }
}

/// ipmpstat's warnings on standard error, then its text as [`print_out`]
/// writes it.
fn print_rendered(out: Rendered) -> Result<(), ExitCode> {
    for w in out.warnings {
        eprintln!("ipmpstat: {w}");
    }
    print_out(out.text.as_bytes())
}

/// Says why ipmpstat cannot print what was asked (a usage error, 2).
fn output_error(e: &OutputError) -> ExitCode {
    eprintln!("ipmpstat: {e}");
    ExitCode::from(2)
}

/// The host name of `address` (files, then DNS, as the system is set up),
/// `None` when it has none.
fn host_name(address: IpAddr) -> Option<String> {
    let sa = socket2::SockAddr::from(std::net::SocketAddr::new(address, 0));
    let mut host = [0 as libc::c_char; libc::NI_MAXHOST as usize];
    // SAFETY: sa and host are valid for the lengths passed.
    let rc = unsafe {
        libc::getnameinfo(
            sa.as_ptr().cast(),
            sa.len(),
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    // SAFETY: on success getnameinfo wrote a NUL-terminated name.
    (rc == 0).then(|| {
        unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    })
}

/// `stat -p`: prints probes as ipmpd reports them, until interrupted;
/// targets by host name when `resolve` (each looked up once).
fn probes(socket: &Path, opts: &OutputOptions, resolve: bool) -> ExitCode {
    let started = Instant::now();
    let mut first = true;
    let mut opts = opts.clone();
    follow(socket, &Request::Probes, |response| match response {
        Response::Done => Ok(true),
        Response::Probe(record) => {
            if resolve && !opts.names.contains_key(&record.target) {
                let name = host_name(record.target).unwrap_or_else(|| record.target.to_string());
                opts.names.insert(record.target, name);
            }
            let out = ipmpstat::render_probes(&[(started.elapsed(), record)], &opts, first)
                .map_err(|e| output_error(&e))?;
            first = false;
            print_rendered(out).map(|()| true)
        }
        other => Err(refused(&other)),
    })
}

/// `events`: prints state changes as ipmpd reports them, until interrupted.
fn events(socket: &Path, json: bool) -> ExitCode {
    follow(socket, &Request::Events, |response| match response {
        Response::Done => {
            // ipmpd subscribed this connection before answering.
            eprintln!("ipmpctl: following ipmpd's events; interrupt to stop");
            Ok(true)
        }
        Response::Event(e) => {
            let line = if json {
                serde_json::to_string(&e).unwrap_or_default()
            } else {
                format!("{} {} {}", utc_time_of_day(e.time), e.group, e.message)
            };
            print_out(format!("{line}\n").as_bytes()).map(|()| true)
        }
        other => Err(refused(&other)),
    })
}

/// Sends `request` and hands each answer to `each` until it says to stop
/// (`Ok(false)`) or fails with the exit status to end with.
fn follow(
    socket: &Path,
    request: &Request,
    mut each: impl FnMut(Response) -> Result<bool, ExitCode>,
) -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    let followed = control::follow(socket, request, |response| {
        each(response).unwrap_or_else(|code| {
            status = code;
            false
        })
    });
    match followed {
        Ok(()) => status,
        Err(e) => unreachable_daemon(e),
    }
}

/// `HH:MM:SS.mmmZ` of a Unix time.
fn utc_time_of_day(unix: f64) -> String {
    let day = unix.rem_euclid(86_400.0);
    let (h, m, s) = (
        (day / 3600.0) as u32,
        ((day % 3600.0) / 60.0) as u32,
        day % 60.0,
    );
    format!("{h:02}:{m:02}:{s:06.3}Z")
}

fn change(socket: &Path, request: Request) -> ExitCode {
    match call(socket, &request) {
        Ok(Response::Done) => ExitCode::SUCCESS,
        Ok(other) => refused(&other),
        Err(code) => code,
    }
}

fn call(socket: &Path, request: &Request) -> Result<Response, ExitCode> {
    control::call(socket, request).map_err(unreachable_daemon)
}

fn unreachable_daemon(e: ClientError) -> ExitCode {
    match e {
        ClientError::Unreachable => eprintln!("cannot contact ipmpd -- is IPMP in use?"),
        ClientError::Other(e) => eprintln!("ipmpctl: {}", printable(&format!("{e:#}"))),
    }
    ExitCode::from(EXIT_NO_DAEMON)
}

fn refused(response: &Response) -> ExitCode {
    match response {
        Response::Refused(reason) => eprintln!("ipmpctl: {}", printable(reason)),
        other => eprintln!("ipmpctl: unexpected answer from ipmpd: {other:?}"),
    }
    ExitCode::from(EXIT_REFUSED)
}
