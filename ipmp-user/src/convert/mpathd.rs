//! `/etc/default/mpathd`: in.mpathd's settings.
use std::collections::HashMap;

use super::{problem, Loc, Output, MPATHD_FILE};
use crate::config::MIN_FDT_MS;

/// in.mpathd raises a smaller FAILURE_DETECTION_TIME to this (ms;
/// MIN_FAILURE_DETECTION_TIME in illumos' mpd_defs.h).
const SOLARIS_MIN_FDT_MS: u64 = 100;

pub(super) struct Daemon {
    /// ms, and the comment saying where it came from.
    pub(super) fdt: Option<(u64, String)>,
    pub(super) failback: Option<(bool, String)>,
}

/// Reads the settings in.mpathd reads, as it reads them; notes the rest.
pub(super) fn read_mpathd(text: &str, out: &mut Output) -> Daemon {
    let mut daemon = Daemon {
        fdt: None,
        failback: None,
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let loc = Loc {
            file: MPATHD_FILE.into(),
            line,
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            out.notes.push(format!(
                "{loc}: \"{trimmed}\" is not KEY=VALUE; in.mpathd ignores it, and so was it here"
            ));
            continue;
        };
        let key = key.trim();
        let value = unquote(value.trim());
        // in.mpathd reads the first line of each key.
        if let Some(first) = seen.get(key) {
            out.notes.push(format!(
                "{loc}: {key} is already set on line {first}; in.mpathd reads only the first, \
                 and so was it here"
            ));
            continue;
        }
        seen.insert(key.to_owned(), line);
        match key {
            "FAILURE_DETECTION_TIME" => {
                if let Some(fdt) = failure_detection_time(value, &loc, out) {
                    daemon.fdt = Some(fdt);
                }
            }
            "FAILBACK" => {
                if let Some(failback) = failback(value, &loc, out) {
                    daemon.failback = Some(failback);
                }
            }
            "TRACK_INTERFACES_ONLY_WITH_GROUPS" => out.notes.push(format!(
                "{loc}: TRACK_INTERFACES_ONLY_WITH_GROUPS={value} ignored: ipmpd tracks only the \
                 members of its groups"
            )),
            _ => out.notes.push(format!(
                "{loc}: {key} ignored: in.mpathd does not read it either"
            )),
        }
    }
    daemon
}

/// FAILURE_DETECTION_TIME=`value`, in ms as in.mpathd reads it, with the
/// comment saying where it came from.
fn failure_detection_time(value: &str, loc: &Loc, out: &mut Output) -> Option<(u64, String)> {
    let Some(ms) = strtol(value).filter(|&ms| ms > 0) else {
        out.problems.push(problem(
            loc,
            Some(format!("FAILURE_DETECTION_TIME={value}")),
            "not a positive number of milliseconds (in.mpathd ignored it and used 10000)".into(),
            "write the failure detection time you mean, in ms".into(),
        ));
        return None;
    };
    let mut comment = format!("FAILURE_DETECTION_TIME={value} (line {})", loc.line);
    let ms = ms as u64;
    if value.trim_start_matches('+') != ms.to_string() {
        out.notes.push(format!(
            "{loc}: FAILURE_DETECTION_TIME={value} is read as {ms} ms (in.mpathd reads a leading 0 \
             as octal and 0x as hexadecimal)"
        ));
    }
    if ms >= SOLARIS_MIN_FDT_MS {
        return Some((ms, comment));
    }
    out.notes.push(format!(
        "{loc}: in.mpathd raises FAILURE_DETECTION_TIME={value} to its minimum of \
         {SOLARIS_MIN_FDT_MS} ms, and so was it here (ipmpd accepts down to {MIN_FDT_MS} ms: lower \
         failure_detection_time_ms if that is what you want)"
    ));
    comment.push_str(", raised to in.mpathd's minimum");
    Some((SOLARIS_MIN_FDT_MS, comment))
}

/// FAILBACK=`value` (yes or no, in any case), with the comment saying where
/// it came from.
fn failback(value: &str, loc: &Loc, out: &mut Output) -> Option<(bool, String)> {
    let failback = if value.eq_ignore_ascii_case("yes") {
        true
    } else if value.eq_ignore_ascii_case("no") {
        false
    } else {
        out.problems.push(problem(
            loc,
            Some(format!("FAILBACK={value}")),
            "FAILBACK is yes or no (in.mpathd ignored this value and failed back)".into(),
            "write FAILBACK=yes or FAILBACK=no".into(),
        ));
        return None;
    };
    Some((failback, format!("FAILBACK={value} (line {})", loc.line)))
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

/// strtol(value, NULL, 0) as in.mpathd uses it, but on the whole value.
fn strtol(value: &str) -> Option<i64> {
    let (negative, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let parsed = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(hex, 16)
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8)
    } else {
        digits.parse::<i64>()
    };
    let number = parsed.ok().filter(|_| !digits.starts_with(['+', '-']))?;
    let number = if negative { -number } else { number };
    (number <= i64::from(i32::MAX)).then_some(number)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn mpathd_values() {
        let mut input = files(&[("eth0", "192.0.2.5/24 group g up")], None);
        input.mpathd = Some(
            "# comment\nFAILURE_DETECTION_TIME=50\nFAILBACK=No\nFAILBACK=yes\nSOMETHING=1\n".into(),
        );
        let converted = convert(&input).unwrap();
        let config = Config::parse(&converted.toml, Path::new(CONFIG_PATH)).unwrap();
        assert_eq!(config.daemon.failure_detection_time_ms, 100);
        assert!(!config.daemon.failback);
        has_note(
            &converted.notes,
            "raises FAILURE_DETECTION_TIME=50 to its minimum of 100 ms",
        );
        has_note(&converted.notes, "FAILBACK is already set on line 3");
        has_note(&converted.notes, "SOMETHING ignored");

        input.mpathd = Some("FAILURE_DETECTION_TIME=010000\n".into());
        let converted = convert(&input).unwrap();
        assert!(converted
            .toml
            .contains("failure_detection_time_ms = 4096  #"));
        has_note(&converted.notes, "is read as 4096 ms");

        input.mpathd = Some("FAILURE_DETECTION_TIME=ten\nFAILBACK=sometimes\n".into());
        assert_eq!(
            errors(&input),
            [
                "/etc/default/mpathd:1: `FAILURE_DETECTION_TIME=ten`: not a positive number of \
                    milliseconds (in.mpathd ignored it and used 10000); write the failure \
                    detection time you mean, in ms",
                "/etc/default/mpathd:2: `FAILBACK=sometimes`: FAILBACK is yes or no (in.mpathd \
                    ignored this value and failed back); write FAILBACK=yes or FAILBACK=no",
            ]
        );
    }
}
