//! ipmpstat's output (`ipmpctl stat`): each mode is a table of fields, and
//! a selection of them is printed the way illumos ipmpstat prints through
//! libofmt (human columns, `-P` parseable lines), or as JSON.
use std::{collections::HashMap, fmt, net::IpAddr, time::Duration};

use serde::{ser::SerializeMap, Serialize, Serializer};

use crate::model::{
    AddressStatus, GroupStatus, MemberState, MemberStatus, ProbeMode, ProbeRecord, ProbingStatus,
    Status,
};

/// An ipmpstat output mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `-g`: one row per group.
    Group,
    /// `-i`: one row per member.
    Interface,
    /// `-a`: one row per data address.
    Address,
    /// `-t`: one row per member and probing address family.
    Target,
    /// `-p`: one row per probe, as they happen.
    Probe,
}

impl Mode {
    fn option(self) -> &'static str {
        match self {
            Mode::Group => "-g",
            Mode::Interface => "-i",
            Mode::Address => "-a",
            Mode::Target => "-t",
            Mode::Probe => "-p",
        }
    }
}

/// The fields chosen with `-o`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fields {
    /// No `-o`: the mode's fields that fit in 80 columns.
    #[default]
    Default,
    /// `-o all`.
    All,
    /// `-o NAME,...`: names as given, matched without regard to case.
    Named(Vec<String>),
}

impl Fields {
    /// Reads `-o`'s argument: `all`, or field names separated by commas.
    pub fn from_arg(arg: &str) -> Fields {
        if arg.trim().eq_ignore_ascii_case("all") {
            return Fields::All;
        }
        Fields::Named(
            arg.split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutputOptions {
    pub fields: Fields,
    /// `-P`: colon-separated values, no header.
    pub parseable: bool,
    /// `--json`: one JSON array of objects.
    pub json: bool,
    /// Host names to show for addresses in human and `-P` output
    /// (ipmpstat resolves them unless `-n`); JSON stays numeric.
    pub names: HashMap<IpAddr, String>,
}

/// What to print: `text` on standard output (each line ends with a
/// newline), `warnings` on standard error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub warnings: Vec<String>,
}

/// Why nothing can be printed; its `Display` is the message for stderr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputError {
    /// `-P` without `-o`: the fields of a mode may change over time, so a
    /// script must name the ones it reads.
    ParseableWithoutFields,
    /// `-P` with `-o all`, for the same reason.
    ParseableAll,
    /// `-P` and `--json`: two output forms at once.
    ParseableJson,
    /// `-P` with fields the mode does not have.
    UnknownFields { mode: Mode, names: Vec<String> },
    /// Not one field the mode has was named.
    NoValidFields { mode: Mode },
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputError::ParseableWithoutFields => {
                f.write_str("-P requires -o with explicit fields")
            }
            OutputError::ParseableAll => {
                f.write_str("-P requires -o with explicit fields; 'all' is not allowed")
            }
            OutputError::ParseableJson => f.write_str("-P and --json cannot be used together"),
            OutputError::UnknownFields { mode, names } => {
                f.write_str(&unknown_fields("unknown output", *mode, names))
            }
            OutputError::NoValidFields { mode } => write!(
                f,
                "no valid output fields ({} has {})",
                mode.option(),
                field_names(*mode)
            ),
        }
    }
}

impl std::error::Error for OutputError {}

/// ofmt's wording, with the fields the mode has, so the fix is at hand.
fn unknown_fields(what: &str, mode: Mode, names: &[String]) -> String {
    let plural = if names.len() > 1 { "s" } else { "" };
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}'")).collect();
    format!(
        "{what} field{plural}: {} ({} has {})",
        quoted.join(" "),
        mode.option(),
        field_names(mode)
    )
}

fn field_names(mode: Mode) -> String {
    fn names<V>(fields: &[Field<V>]) -> String {
        let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
        names.join(",")
    }
    match mode {
        Mode::Group => names(GROUP_FIELDS),
        Mode::Address => names(ADDRESS_FIELDS),
        Mode::Target => names(TARGET_FIELDS),
        Mode::Probe => names(PROBE_FIELDS),
        Mode::Interface => names(INTERFACE_FIELDS),
    }
}

/// One ipmpstat field: its name (header, `-o`, lower-cased as JSON key),
/// its width in human output, and how to read it from a row. `V` is the
/// mode's kind of reader, as each mode has its own kind of row.
struct Field<V> {
    name: &'static str,
    width: usize,
    value: V,
}

const fn field<V>(name: &'static str, width: usize, value: V) -> Field<V> {
    Field { name, width, value }
}

type GroupValue = fn(&GroupStatus) -> String;
type InterfaceValue = fn(&GroupStatus, &MemberStatus) -> String;

/// `-g`, in ipmpstat's order and widths. GROUP is the group interface's
/// name and GROUPNAME the group's; here they are the same.
const GROUP_FIELDS: &[Field<GroupValue>] = &[
    field("GROUP", 12, |g| g.name.clone()),
    field("GROUPNAME", 12, |g| g.name.clone()),
    field("STATE", 10, |g| g.state.to_string()),
    field("FDT", 10, fdt),
    field("INTERFACES", 30, interfaces),
];

/// `-i`, in ipmpstat's order and widths.
const INTERFACE_FIELDS: &[Field<InterfaceValue>] = &[
    field("INTERFACE", 12, |_, m| m.name.clone()),
    field("ACTIVE", 8, |_, m| yes_no(m.active)),
    field("GROUP", 12, |g, _| g.name.clone()),
    field("FLAGS", 10, |_, m| flags(m)),
    field("LINK", 10, |_, m| m.link.to_string()),
    field("PROBE", 10, |_, m| m.probe.to_string()),
    field("STATE", 10, |_, m| m.state.to_string()),
    // Beyond ipmpstat: the XDP attach mode in use, and why it was chosen.
    field("XDP", 10, |_, m| {
        m.xdp.as_ref().map_or(UNKNOWN.into(), |x| x.mode.clone())
    }),
    field("XDPREASON", 40, |_, m| {
        m.xdp.as_ref().map_or(UNKNOWN.into(), |x| x.reason.clone())
    }),
];

/// ipmpstat's value for a field that cannot be known (`--` is empty).
pub const UNKNOWN: &str = "?";

type AddressValue = fn(&GroupStatus, &AddressStatus) -> String;

/// ipmpstat -a, in table order.
const ADDRESS_FIELDS: &[Field<AddressValue>] = &[
    field("ADDRESS", 26, |_, a| a.address.to_string()),
    field("STATE", 7, |_, a| {
        if a.up { "up" } else { "down" }.to_owned()
    }),
    field("GROUP", 12, |g, _| g.name.clone()),
    field("INBOUND", 12, |_, a| a.inbound.clone().unwrap_or_default()),
    // The group's active members; none while the address is down.
    field("OUTBOUND", 23, |g, a| {
        let active: Vec<&str> = g
            .members
            .iter()
            .filter(|m| a.up && m.active)
            .map(|m| m.name.as_str())
            .collect();
        active.join(" ")
    }),
];

type TargetValue = fn(&MemberStatus, Option<&ProbingStatus>) -> String;

/// ipmpstat -t, in table order.
const TARGET_FIELDS: &[Field<TargetValue>] = &[
    field("INTERFACE", 12, |m, _| m.name.clone()),
    field("MODE", 10, |_, p| {
        p.map_or(ProbeMode::Disabled, |p| p.mode).to_string()
    }),
    // Unknown while a probing family's address is not known yet (an IPv6
    // link-local address still in duplicate address detection).
    field("TESTADDR", 20, |_, p| match p {
        Some(p) => p.test_address.map_or(UNKNOWN.into(), |a| a.to_string()),
        None => String::new(),
    }),
    field("TARGETS", 38, |_, p| {
        p.map(|p| {
            p.targets
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
    }),
];

/// A probe with the time it was reported, since ipmpctl started.
pub type TimedProbe = (Duration, ProbeRecord);
type ProbeValue = fn(&TimedProbe) -> String;

/// ipmpstat -p, in ipmpstat's table order (RTTDEV last, so the default
/// 80 columns leave it out, as ipmpstat does).
const PROBE_FIELDS: &[Field<ProbeValue>] = &[
    field("TIME", 10, |(t, _)| format!("{:.2}s", t.as_secs_f64())),
    field("INTERFACE", 12, |(_, p)| p.interface.clone()),
    field("PROBE", 7, |(_, p)| p.seq.to_string()),
    field("NETRTT", 10, |(_, p)| ms(p.net_rtt_ns)),
    field("RTT", 10, |(_, p)| ms(p.rtt_ns)),
    field("RTTAVG", 10, |(_, p)| ms(p.rtt_avg_ns)),
    field("TARGET", 20, |(_, p)| p.target.to_string()),
    field("RTTDEV", 10, |(_, p)| ms(p.rtt_dev_ns)),
];

/// `%.2fms`, empty for a lost probe.
fn ms(ns: Option<u64>) -> String {
    ns.map(|ns| format!("{:.2}ms", ns as f64 / 1e6))
        .unwrap_or_default()
}

/// Empty without probing: there is no failure detection time then.
fn fdt(group: &GroupStatus) -> String {
    group
        .fdt_ms
        .map(|ms| format!("{:.2}s", ms as f64 / 1000.0))
        .unwrap_or_default()
}

/// Active members, then `(inactive)` ones (usable, not active), then
/// `[unusable]` ones, each list in member order.
fn interfaces(group: &GroupStatus) -> String {
    let (mut active, mut inactive, mut unusable) = (Vec::new(), Vec::new(), Vec::new());
    for member in &group.members {
        let list = if member.active {
            &mut active
        } else if member.state == MemberState::Ok {
            &mut inactive
        } else {
            &mut unusable
        };
        list.push(member.name.as_str());
    }
    let mut parts = Vec::new();
    if !active.is_empty() {
        parts.push(active.join(" "));
    }
    if !inactive.is_empty() {
        parts.push(format!("({})", inactive.join(" ")));
    }
    if !unusable.is_empty() {
        parts.push(format!("[{}]", unusable.join(" ")));
    }
    parts.join(" ")
}

fn yes_no(yes: bool) -> String {
    if yes { "yes" } else { "no" }.to_owned()
}

/// `ismbMdh`, `-` for each flag not set.
fn flags(member: &MemberStatus) -> String {
    let f = &member.flags;
    [
        (f.inactive, 'i'),
        (f.standby, 's'),
        (f.mcast4, 'm'),
        (f.bcast4, 'b'),
        (f.mcast6, 'M'),
        (f.down, 'd'),
        (f.dup_hwaddr, 'h'),
    ]
    .iter()
    .map(|&(set, c)| if set { c } else { '-' })
    .collect()
}

/// The fields and their values, ready to print in any form.
struct Table {
    /// Name and width of each selected field.
    columns: Vec<(&'static str, usize)>,
    rows: Vec<Vec<String>>,
}

/// Prints `status` in `mode`. Rows come in snapshot order: groups in
/// order, members in order.
pub fn render(status: &Status, mode: Mode, opts: &OutputOptions) -> Result<Rendered, OutputError> {
    let groups = status.groups.iter();
    let (table, warnings) = match mode {
        Mode::Group => rows(mode, GROUP_FIELDS, opts, groups, |value, g| value(g))?,
        Mode::Interface => {
            let members = groups.flat_map(|g| g.members.iter().map(move |m| (g, m)));
            rows(mode, INTERFACE_FIELDS, opts, members, |value, (g, m)| {
                value(g, m)
            })?
        }
        Mode::Address => {
            let addresses = groups.flat_map(|g| g.addresses.iter().map(move |a| (g, a)));
            rows(mode, ADDRESS_FIELDS, opts, addresses, |value, (g, a)| {
                value(g, a)
            })?
        }
        Mode::Target => {
            let families = groups.flat_map(|g| g.members.iter()).flat_map(|m| {
                // A member that probes in no family shows one row, disabled.
                let families: Vec<Option<&ProbingStatus>> = if m.probing.is_empty() {
                    vec![None]
                } else {
                    m.probing.iter().map(Some).collect()
                };
                families.into_iter().map(move |p| (m, p))
            });
            rows(mode, TARGET_FIELDS, opts, families, |value, (m, p)| {
                value(m, *p)
            })?
        }
        Mode::Probe => return render_probes(&[], opts, true),
    };
    Ok(Rendered {
        text: output(&table, opts, true),
        warnings,
    })
}

/// `-p`'s rows for `probes`. ipmpctl prints them as they come: the human
/// form's header goes with the first call only (`header`), and `--json`
/// gives one object per line.
pub fn render_probes(
    probes: &[TimedProbe],
    opts: &OutputOptions,
    header: bool,
) -> Result<Rendered, OutputError> {
    let (table, warnings) = rows(
        Mode::Probe,
        PROBE_FIELDS,
        opts,
        probes.iter(),
        |value, p| value(p),
    )?;
    let text = if opts.json {
        json_rows(&table)
            .map(|row| json_text(&row) + "\n")
            .collect()
    } else {
        output(&table, opts, header)
    };
    Ok(Rendered { text, warnings })
}

fn output(table: &Table, opts: &OutputOptions, header: bool) -> String {
    if opts.json {
        json(table)
    } else if opts.parseable {
        parseable(&named(table, &opts.names))
    } else {
        human(&named(table, &opts.names), header)
    }
}

/// The fields whose values are addresses (space-separated lists in
/// TARGETS), shown as host names where `names` has one.
const ADDRESS_FIELDS_NAMED: [&str; 4] = ["ADDRESS", "TESTADDR", "TARGETS", "TARGET"];

fn named(table: &Table, names: &HashMap<IpAddr, String>) -> Table {
    let columns = table.columns.clone();
    let rows = table
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .zip(&columns)
                .map(|(value, (name, _))| {
                    if !ADDRESS_FIELDS_NAMED.contains(name) {
                        return value.clone();
                    }
                    value
                        .split(' ')
                        .map(|word| {
                            word.parse::<IpAddr>()
                                .ok()
                                .and_then(|a| names.get(&a))
                                .map_or(word, String::as_str)
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect()
        })
        .collect();
    Table { columns, rows }
}

/// Every address `status` would show, for the caller to look up.
pub fn addresses(status: &Status) -> Vec<IpAddr> {
    let mut all = Vec::new();
    for g in &status.groups {
        all.extend(g.addresses.iter().map(|a| a.address));
        for p in g.members.iter().flat_map(|m| &m.probing) {
            all.extend(p.test_address);
            all.extend(&p.targets);
        }
    }
    all
}

/// The fields of `mode` that `opts` selects (see [`select`]) read from
/// each of `items` (`value` applies a field's reader to an item), with the
/// warnings to give.
fn rows<V, T>(
    mode: Mode,
    fields: &[Field<V>],
    opts: &OutputOptions,
    items: impl Iterator<Item = T>,
    value: impl Fn(&V, &T) -> String,
) -> Result<(Table, Vec<String>), OutputError> {
    let (fields, warnings) = select(mode, fields, opts)?;
    let rows = items
        .map(|item| fields.iter().map(|f| value(&f.value, &item)).collect())
        .collect();
    let columns = fields.iter().map(|f| (f.name, f.width)).collect();
    Ok((Table { columns, rows }, warnings))
}

/// ipmpstat gives ofmt this many columns for the fields shown without `-o`.
const DEFAULT_COLUMNS: usize = 80;

/// The fields `opts` asks for, in the order asked, with the warnings to
/// give; ofmt's rules.
fn select<'f, V>(
    mode: Mode,
    fields: &'f [Field<V>],
    opts: &OutputOptions,
) -> Result<(Vec<&'f Field<V>>, Vec<String>), OutputError> {
    if opts.parseable && opts.json {
        return Err(OutputError::ParseableJson);
    }
    let names = match &opts.fields {
        // `-o all` arrives this way when the caller splits at commas.
        Fields::Named(names) if names.len() == 1 && names[0].eq_ignore_ascii_case("all") => None,
        Fields::Named(names) => Some(names),
        Fields::All => None,
        Fields::Default if opts.parseable => return Err(OutputError::ParseableWithoutFields),
        // JSON has no columns to fit: every field.
        Fields::Default if opts.json => None,
        Fields::Default => {
            let mut used = 0;
            let fitting = fields
                .iter()
                .take_while(|f| {
                    used += f.width;
                    used <= DEFAULT_COLUMNS
                })
                .collect();
            return Ok((fitting, Vec::new()));
        }
    };
    let Some(names) = names else {
        if opts.parseable {
            return Err(OutputError::ParseableAll);
        }
        return Ok((fields.iter().collect(), Vec::new()));
    };
    let mut selected = Vec::new();
    let mut unknown = Vec::new();
    for name in names.iter().filter(|n| !n.is_empty()) {
        match fields.iter().find(|f| f.name.eq_ignore_ascii_case(name)) {
            Some(field) => selected.push(field),
            None => unknown.push(name.clone()),
        }
    }
    if selected.is_empty() {
        return Err(OutputError::NoValidFields { mode });
    }
    if unknown.is_empty() {
        return Ok((selected, Vec::new()));
    }
    if opts.parseable {
        return Err(OutputError::UnknownFields {
            mode,
            names: unknown,
        });
    }
    let warning = unknown_fields("ignoring unknown output", mode, &unknown);
    Ok((selected, vec![warning]))
}

/// ofmt's human form: each field left-aligned in its width (the width
/// includes the space before the next field), `--` for an empty value,
/// the last field not padded. A value that does not fit is followed by
/// one space, and the next fields give up padding to catch up. The header
/// comes with the first row, so no rows print nothing.
fn human(table: &Table, header: bool) -> String {
    let mut out = String::new();
    if table.rows.is_empty() {
        return out;
    }
    if header {
        human_line(&mut out, &table.columns, table.columns.iter().map(|c| c.0));
    }
    for row in &table.rows {
        let values = row
            .iter()
            .map(|v| if v.is_empty() { "--" } else { v.as_str() });
        human_line(&mut out, &table.columns, values);
    }
    out
}

fn human_line<'a>(
    out: &mut String,
    columns: &[(&str, usize)],
    values: impl Iterator<Item = &'a str>,
) {
    // How far the line runs past where the columns should be.
    let mut overflow = 0;
    let last = columns.len() - 1;
    for (i, (value, &(_, width))) in values.zip(columns).enumerate() {
        if i == last {
            out.push_str(value);
            break;
        }
        let len = value.chars().count();
        if len + overflow >= width {
            overflow = overflow + len + 1 - width;
            out.push_str(value);
            out.push(' ');
        } else {
            let caught_up = overflow.min(width - len);
            overflow -= caught_up;
            out.push_str(&format!("{value:<0$}", width - caught_up));
        }
    }
    out.push('\n');
}

/// ofmt's `-P` form: values joined by `:`, `:` and `\` in a value escaped
/// with `\`, empty values empty, no header. A single field is printed as
/// it is, since there is no separator to mistake.
fn parseable(table: &Table) -> String {
    let mut out = String::new();
    for row in &table.rows {
        if let [value] = row.as_slice() {
            out.push_str(value);
        } else {
            let escaped: Vec<String> = row
                .iter()
                .map(|v| v.replace('\\', "\\\\").replace(':', "\\:"))
                .collect();
            out.push_str(&escaped.join(":"));
        }
        out.push('\n');
    }
    out
}

/// `--json`: an array with one object per row, keys the lower-case field
/// names in the selected order, values as the human form prints them but
/// empty for an empty field.
fn json(table: &Table) -> String {
    json_text(&json_rows(table).collect::<Vec<_>>()) + "\n"
}

fn json_rows(table: &Table) -> impl Iterator<Item = JsonRow<'_>> {
    table.rows.iter().map(|values| JsonRow {
        columns: &table.columns,
        values,
    })
}

/// Compact JSON. Serializing strings into a `String` cannot fail.
fn json_text(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// One row as a JSON object, its keys in the order of the columns (a
/// `serde_json::Map` would sort them).
struct JsonRow<'t> {
    columns: &'t [(&'static str, usize)],
    values: &'t [String],
}

impl Serialize for JsonRow<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut object = serializer.serialize_map(Some(self.values.len()))?;
        for (&(name, _), value) in self.columns.iter().zip(self.values) {
            object.serialize_entry(&name.to_ascii_lowercase(), value)?;
        }
        object.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        GroupState, LinkState, MemberFlags, ProbeMode, ProbeRecord, ProbeState, ProbingStatus,
    };

    fn member(
        name: &str,
        active: bool,
        link: LinkState,
        probe: ProbeState,
        state: MemberState,
    ) -> MemberStatus {
        MemberStatus {
            name: name.into(),
            active,
            flags: MemberFlags::default(),
            link,
            probe,
            state,
            probing: Vec::new(),
            xdp: None,
        }
    }

    /// The tutorial's hivemind after cable 1 is pulled with probing on:
    /// rge0 casts, e1000g0 failed with its link down.
    fn cable_pulled() -> Status {
        let mut rge0 = member("rge0", true, LinkState::Up, ProbeState::Ok, MemberState::Ok);
        rge0.flags.mcast4 = true;
        rge0.flags.bcast4 = true;
        Status {
            groups: vec![GroupStatus {
                name: "production0".into(),
                state: GroupState::Degraded,
                fdt_ms: Some(10_000),
                members: vec![
                    rge0,
                    member(
                        "e1000g1",
                        true,
                        LinkState::Up,
                        ProbeState::Ok,
                        MemberState::Ok,
                    ),
                    member(
                        "e1000g0",
                        false,
                        LinkState::Down,
                        ProbeState::Failed,
                        MemberState::Failed,
                    ),
                ],
                addresses: Vec::new(),
            }],
        }
    }

    fn options(fields: Fields, parseable: bool, json: bool) -> OutputOptions {
        OutputOptions {
            fields,
            parseable,
            json,
            ..OutputOptions::default()
        }
    }

    fn named(names: &[&str]) -> Fields {
        Fields::Named(names.iter().map(|&n| n.to_owned()).collect())
    }

    fn text(status: &Status, mode: Mode, opts: &OutputOptions) -> String {
        let rendered = render(status, mode, opts).unwrap();
        assert_eq!(rendered.warnings, Vec::<String>::new());
        rendered.text
    }

    #[test]
    fn interfaces_after_cable_pulled() {
        assert_eq!(
            text(&cable_pulled(), Mode::Interface, &OutputOptions::default()),
            "INTERFACE   ACTIVE  GROUP       FLAGS     LINK      PROBE     STATE\n\
             rge0        yes     production0 --mb---   up        ok        ok\n\
             e1000g1     yes     production0 -------   up        ok        ok\n\
             e1000g0     no      production0 -------   down      failed    failed\n"
        );
    }

    /// XDP's mode and reason are there with -o; `?` where not attached.
    #[test]
    fn xdp_mode_and_unknown_values() {
        let mut status = cable_pulled();
        status.groups[0].members[0].xdp = Some(crate::model::XdpStatus {
            mode: "generic".into(),
            reason: "generic mode (configured)".into(),
        });
        assert_eq!(
            text(
                &status,
                Mode::Interface,
                &options(named(&["interface", "xdp", "xdpreason"]), true, false)
            ),
            "rge0:generic:generic mode (configured)\ne1000g1:?:?\ne1000g0:?:?\n"
        );
        // JSON has no columns to fit: every field without -o.
        let json = text(
            &status,
            Mode::Interface,
            &options(Fields::Default, false, true),
        );
        assert!(json.contains("\"xdp\":\"generic\",\"xdpreason\":\"generic mode (configured)\""));
    }

    /// Addresses are shown by host name where one is known (ipmpstat
    /// without -n); JSON stays numeric.
    #[test]
    fn addresses_by_host_name() {
        let mut status = cable_pulled();
        status.groups[0].members[0].probing = vec![ProbingStatus {
            mode: ProbeMode::Routes,
            test_address: None,
            targets: vec!["192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()],
        }];
        assert_eq!(addresses(&status).len(), 2);
        let mut opts = options(named(&["interface", "testaddr", "targets"]), true, false);
        opts.names
            .insert("192.0.2.1".parse().unwrap(), "router1".into());
        assert_eq!(
            text(&status, Mode::Target, &opts),
            "rge0:?:router1 192.0.2.2\ne1000g1::\ne1000g0::\n"
        );
        opts.parseable = false;
        opts.json = true;
        assert!(text(&status, Mode::Target, &opts).contains("192.0.2.1 192.0.2.2"));
    }

    #[test]
    fn groups_after_cable_pulled() {
        assert_eq!(
            text(&cable_pulled(), Mode::Group, &OutputOptions::default()),
            "GROUP       GROUPNAME   STATE     FDT       INTERFACES\n\
             production0 production0 degraded  10.00s    rge0 e1000g1 [e1000g0]\n"
        );
    }

    /// Link-based only (no FDT), a standby kept inactive, an offline
    /// member, and a group that has no member yet.
    #[test]
    fn groups_inactive_unusable_and_empty() {
        let mut standby = member(
            "e1000g1",
            false,
            LinkState::Up,
            ProbeState::Disabled,
            MemberState::Ok,
        );
        standby.flags.standby = true;
        standby.flags.inactive = true;
        let status = Status {
            groups: vec![
                GroupStatus {
                    name: "production0".into(),
                    state: GroupState::Degraded,
                    fdt_ms: None,
                    members: vec![
                        member(
                            "rge0",
                            false,
                            LinkState::Up,
                            ProbeState::Disabled,
                            MemberState::Offline,
                        ),
                        standby,
                        member(
                            "e1000g0",
                            true,
                            LinkState::Up,
                            ProbeState::Disabled,
                            MemberState::Ok,
                        ),
                        member(
                            "e1000g2",
                            false,
                            LinkState::Unknown,
                            ProbeState::Disabled,
                            MemberState::Unknown,
                        ),
                    ],
                    addresses: Vec::new(),
                },
                GroupStatus {
                    name: "test0".into(),
                    state: GroupState::Failed,
                    fdt_ms: Some(2500),
                    members: vec![],
                    addresses: Vec::new(),
                },
            ],
        };
        assert_eq!(
            text(&status, Mode::Group, &OutputOptions::default()),
            "GROUP       GROUPNAME   STATE     FDT       INTERFACES\n\
             production0 production0 degraded  --        e1000g0 (e1000g1) [rge0 e1000g2]\n\
             test0       test0       failed    2.50s     --\n"
        );
        assert_eq!(
            text(&status, Mode::Interface, &OutputOptions::default()),
            "INTERFACE   ACTIVE  GROUP       FLAGS     LINK      PROBE     STATE\n\
             rge0        no      production0 -------   up        disabled  offline\n\
             e1000g1     no      production0 is-----   up        disabled  ok\n\
             e1000g0     yes     production0 -------   up        disabled  ok\n\
             e1000g2     no      production0 -------   unknown   disabled  unknown\n"
        );
    }

    #[test]
    fn every_flag() {
        let mut status = cable_pulled();
        status.groups[0].members[0].flags = MemberFlags {
            inactive: true,
            standby: true,
            mcast4: true,
            bcast4: true,
            mcast6: true,
            down: true,
            dup_hwaddr: true,
        };
        let opts = options(named(&["interface", "flags"]), false, false);
        assert_eq!(
            text(&status, Mode::Interface, &opts),
            "INTERFACE   FLAGS\nrge0        ismbMdh\ne1000g1     -------\ne1000g0     -------\n"
        );
    }

    /// A value as wide as its field or wider is followed by one space and
    /// pushes the rest right until later fields' padding takes it up.
    #[test]
    fn wide_values_push_the_rest_right() {
        let mut status = cable_pulled();
        status.groups[0].name = "production12".into();
        status.groups[0].members[1].name = "averyverylongname".into();
        assert_eq!(
            text(&status, Mode::Interface, &OutputOptions::default()),
            "INTERFACE   ACTIVE  GROUP       FLAGS     LINK      PROBE     STATE\n\
             rge0        yes     production12 --mb---  up        ok        ok\n\
             averyverylongname yes production12 ------- up       ok        ok\n\
             e1000g0     no      production12 -------  down      failed    failed\n"
        );
    }

    #[test]
    fn no_rows_print_nothing() {
        let empty = Status::default();
        assert_eq!(text(&empty, Mode::Group, &OutputOptions::default()), "");
        let parseable = options(named(&["group"]), true, false);
        assert_eq!(text(&empty, Mode::Interface, &parseable), "");
        assert_eq!(
            text(
                &empty,
                Mode::Interface,
                &options(Fields::Default, false, true)
            ),
            "[]\n"
        );
    }

    #[test]
    fn chosen_fields_in_their_order_any_case() {
        let opts = options(named(&["interface", "STATE", "Link"]), false, false);
        assert_eq!(
            text(&cable_pulled(), Mode::Interface, &opts),
            "INTERFACE   STATE     LINK\n\
             rge0        ok        up\n\
             e1000g1     ok        up\n\
             e1000g0     failed    down\n"
        );
    }

    #[test]
    fn all_is_every_field() {
        let status = cable_pulled();
        let default = text(&status, Mode::Group, &OutputOptions::default());
        for fields in [Fields::All, named(&["ALL"]), Fields::from_arg("all")] {
            assert_eq!(
                text(&status, Mode::Group, &options(fields, false, false)),
                default
            );
        }
        let all = text(
            &status,
            Mode::Interface,
            &options(Fields::All, false, false),
        );
        assert!(all
            .starts_with("INTERFACE   ACTIVE  GROUP       FLAGS     LINK      PROBE     STATE     XDP       XDPREASON\n"));
    }

    #[test]
    fn fields_from_arg() {
        assert_eq!(Fields::from_arg("All"), Fields::All);
        assert_eq!(
            Fields::from_arg("group, state,,fdt"),
            named(&["group", "state", "fdt"])
        );
        assert_eq!(Fields::from_arg("all,group"), named(&["all", "group"]));
    }

    #[test]
    fn unknown_field_is_a_warning_in_human_output() {
        let opts = options(named(&["interface", "speed", "state"]), false, false);
        let rendered = render(&cable_pulled(), Mode::Interface, &opts).unwrap();
        assert_eq!(
            rendered.warnings,
            ["ignoring unknown output field: `speed' (-i has INTERFACE,ACTIVE,GROUP,FLAGS,LINK,PROBE,STATE,XDP,XDPREASON)"]
        );
        assert!(rendered
            .text
            .starts_with("INTERFACE   STATE\nrge0        ok\n"));

        let opts = options(named(&["group", "speed", "mtu"]), false, true);
        let rendered = render(&cable_pulled(), Mode::Group, &opts).unwrap();
        assert_eq!(
            rendered.warnings,
            ["ignoring unknown output fields: `speed' `mtu' (-g has GROUP,GROUPNAME,STATE,FDT,INTERFACES)"]
        );
        assert_eq!(rendered.text, "[{\"group\":\"production0\"}]\n");
    }

    #[test]
    fn unknown_field_is_an_error_with_parseable() {
        let opts = options(named(&["interface", "speed"]), true, false);
        let err = render(&cable_pulled(), Mode::Interface, &opts).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown output field: `speed' (-i has INTERFACE,ACTIVE,GROUP,FLAGS,LINK,PROBE,STATE,XDP,XDPREASON)"
        );
    }

    #[test]
    fn no_known_field_is_an_error() {
        for parseable in [false, true] {
            let opts = options(named(&["speed"]), parseable, false);
            let err = render(&cable_pulled(), Mode::Group, &opts).unwrap_err();
            assert_eq!(err, OutputError::NoValidFields { mode: Mode::Group });
            assert_eq!(
                err.to_string(),
                "no valid output fields (-g has GROUP,GROUPNAME,STATE,FDT,INTERFACES)"
            );
        }
    }

    #[test]
    fn parseable_needs_named_fields() {
        let status = cable_pulled();
        let err = render(&status, Mode::Group, &options(Fields::Default, true, false)).unwrap_err();
        assert_eq!(err.to_string(), "-P requires -o with explicit fields");
        for fields in [Fields::All, named(&["all"])] {
            let err = render(&status, Mode::Group, &options(fields, true, false)).unwrap_err();
            assert_eq!(
                err.to_string(),
                "-P requires -o with explicit fields; 'all' is not allowed"
            );
        }
        let err = render(
            &status,
            Mode::Group,
            &options(named(&["group"]), true, true),
        )
        .unwrap_err();
        assert_eq!(err, OutputError::ParseableJson);
    }

    #[test]
    fn parseable_output() {
        let opts = options(
            named(&["interface", "active", "flags", "probe"]),
            true,
            false,
        );
        assert_eq!(
            text(&cable_pulled(), Mode::Interface, &opts),
            "rge0:yes:--mb---:ok\ne1000g1:yes:-------:ok\ne1000g0:no:-------:failed\n"
        );
        // An empty field stays empty.
        let opts = options(named(&["group", "fdt", "state"]), true, false);
        let mut status = cable_pulled();
        status.groups[0].fdt_ms = None;
        assert_eq!(text(&status, Mode::Group, &opts), "production0::degraded\n");
    }

    #[test]
    fn parseable_escapes_colon_and_backslash() {
        let mut status = cable_pulled();
        status.groups[0].name = r"a:b\c".into();
        let opts = options(named(&["interface", "group"]), true, false);
        assert_eq!(
            text(&status, Mode::Interface, &opts),
            "rge0:a\\:b\\\\c\ne1000g1:a\\:b\\\\c\ne1000g0:a\\:b\\\\c\n"
        );
        // One field: nothing to tell apart, printed as it is.
        let opts = options(named(&["group"]), true, false);
        assert_eq!(text(&status, Mode::Group, &opts), "a:b\\c\n");
    }

    #[test]
    fn json_output() {
        let mut status = cable_pulled();
        status.groups[0].fdt_ms = None;
        assert_eq!(
            text(&status, Mode::Group, &options(Fields::Default, false, true)),
            "[{\"group\":\"production0\",\"groupname\":\"production0\",\"state\":\"degraded\",\
             \"fdt\":\"\",\"interfaces\":\"rge0 e1000g1 [e1000g0]\"}]\n"
        );
        let opts = options(named(&["STATE", "interface", "flags"]), false, true);
        let json = text(&status, Mode::Interface, &opts);
        assert_eq!(
            json,
            "[{\"state\":\"ok\",\"interface\":\"rge0\",\"flags\":\"--mb---\"},\
             {\"state\":\"ok\",\"interface\":\"e1000g1\",\"flags\":\"-------\"},\
             {\"state\":\"failed\",\"interface\":\"e1000g0\",\"flags\":\"-------\"}]\n"
        );
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed[2]["state"], "failed");
    }

    #[test]
    fn json_escapes_strings() {
        let mut status = cable_pulled();
        status.groups[0].name = "quo\"te\\".into();
        let opts = options(named(&["group"]), false, true);
        let json = text(&status, Mode::Group, &opts);
        assert_eq!(json, "[{\"group\":\"quo\\\"te\\\\\"}]\n");
    }

    #[test]
    fn targets_one_row_per_probing_family_and_disabled_without() {
        let mut status = cable_pulled();
        let e1000g0 = &mut status.groups[0].members[2];
        e1000g0.probing = vec![ProbingStatus {
            mode: ProbeMode::Routes,
            test_address: Some("192.0.2.201".parse().unwrap()),
            targets: vec!["192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()],
        }];
        let out = render(&status, Mode::Target, &OutputOptions::default()).unwrap();
        assert_eq!(
            out.text,
            "INTERFACE   MODE      TESTADDR            TARGETS\n\
             rge0        disabled  --                  --\n\
             e1000g1     disabled  --                  --\n\
             e1000g0     routes    192.0.2.201         192.0.2.1 192.0.2.2\n"
        );
    }

    fn probe(seq: u16, rtt: Option<u64>) -> ProbeRecord {
        ProbeRecord {
            interface: "e1000g0".into(),
            seq,
            target: "192.0.2.1".parse().unwrap(),
            net_rtt_ns: rtt.map(|r| r / 2),
            rtt_ns: rtt,
            rtt_avg_ns: Some(200_000),
            rtt_dev_ns: Some(50_000),
        }
    }

    #[test]
    fn probes_print_as_they_come_and_leave_rttdev_out_by_default() {
        let first = [(Duration::from_millis(1500), probe(7, Some(250_000)))];
        let lost = [(Duration::from_millis(2000), probe(8, None))];
        let opts = OutputOptions::default();
        let text = render_probes(&first, &opts, true).unwrap().text
            + &render_probes(&lost, &opts, false).unwrap().text;
        assert_eq!(
            text,
            "TIME      INTERFACE   PROBE  NETRTT    RTT       RTTAVG    TARGET\n\
             1.50s     e1000g0     7      0.12ms    0.25ms    0.20ms    192.0.2.1\n\
             2.00s     e1000g0     8      --        --        0.20ms    192.0.2.1\n"
        );
        let json = OutputOptions {
            json: true,
            fields: Fields::from_arg("probe,rttdev"),
            ..opts
        };
        assert_eq!(
            render_probes(&lost, &json, true).unwrap().text,
            "{\"probe\":\"8\",\"rttdev\":\"0.05ms\"}\n"
        );
    }

    #[test]
    fn addresses_with_their_outbound_members() {
        let mut status = cable_pulled();
        status.groups[0].addresses = vec![
            AddressStatus {
                address: "192.0.2.200".parse().unwrap(),
                up: true,
                inbound: None,
            },
            AddressStatus {
                address: "2001:db8::200".parse().unwrap(),
                up: false,
                inbound: Some("rge0".into()),
            },
        ];
        let out = render(&status, Mode::Address, &OutputOptions::default()).unwrap();
        assert_eq!(
            out.text,
            "ADDRESS                   STATE  GROUP       INBOUND     OUTBOUND\n\
             192.0.2.200               up     production0 --          rge0 e1000g1\n\
             2001:db8::200             down   production0 rge0        --\n"
        );
    }
}
