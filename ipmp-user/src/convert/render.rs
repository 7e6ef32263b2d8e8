//! The TOML: ipmpd's configuration, with comments saying where each part
//! came from.
use super::gather::Group;
use super::mpathd::Daemon;
use super::MPATHD_FILE;

pub(super) fn render(daemon: Option<&Daemon>, groups: &[Group]) -> String {
    let mut s = String::new();
    s.push_str("# ipmpd configuration converted from Solaris IPMP by `ipmpctl convert`.\n");
    s.push_str("# Check it with `ipmpd --check --config FILE` before using it.\n");
    if let Some(daemon) = daemon.filter(|d| d.fdt.is_some() || d.failback.is_some()) {
        s.push_str("\n[daemon]\n");
        s.push_str(&format!("# From {MPATHD_FILE}.\n"));
        if let Some((ms, comment)) = &daemon.fdt {
            s.push_str(&format!(
                "failure_detection_time_ms = {ms}  # {}\n",
                comment_text(comment)
            ));
        }
        if let Some((failback, comment)) = &daemon.failback {
            s.push_str(&format!(
                "failback = {failback}  # {}\n",
                comment_text(comment)
            ));
        }
    }
    for group in groups {
        s.push('\n');
        for line in &group.comment {
            s.push_str(&format!("# {}\n", comment_text(line)));
        }
        s.push_str("[[group]]\n");
        s.push_str(&format!("name = {}\n", toml_string(&group.name)));
        s.push_str("data_addresses = [\n");
        for addr in &group.data {
            let value = toml_string(&format!("{}/{}", addr.ip, addr.prefix));
            s.push_str(&format!(
                "    {value},  # {}\n",
                comment_text(&addr.comment)
            ));
        }
        for (ip, prefix, comment) in &group.data6 {
            let value = toml_string(&format!("{ip}/{prefix}"));
            s.push_str(&format!("    {value},  # {}\n", comment_text(comment)));
        }
        s.push_str("]\n");
        for member in &group.members {
            s.push('\n');
            for line in &member.comment {
                s.push_str(&format!("# {}\n", comment_text(line)));
            }
            s.push_str("[[group.member]]\n");
            s.push_str(&format!("interface = {}", toml_string(&member.interface)));
            match &member.test {
                None => s.push_str("  # no test address: link-based failure detection only\n"),
                Some(test) => {
                    s.push('\n');
                    let value = toml_string(&format!("{}/{}", test.ip, test.prefix));
                    s.push_str(&format!("test_address = {value}"));
                    if !test.comment.is_empty() {
                        s.push_str(&format!("  # {}", comment_text(&test.comment)));
                    }
                    s.push('\n');
                    let inside = group.data.iter().any(|d| {
                        format!("{}/{}", d.ip, d.prefix)
                            .parse::<ipnet::IpNet>()
                            .is_ok_and(|net| net.contains(&std::net::IpAddr::V4(test.ip)))
                    });
                    if !inside {
                        // Solaris probes from any subnet; ipmp wants it said.
                        s.push_str("test_address_outside_data_subnets = true\n");
                    }
                }
            }
            if member.standby {
                s.push_str("standby = true\n");
            }
        }
    }
    s
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut s = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if c.is_control() => s.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Text a TOML comment may hold: no control characters but tab.
fn comment_text(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_and_comments_are_escaped() {
        assert_eq!(toml_string("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\u0001\"");
        assert_eq!(comment_text("a\u{7}b\tc"), "a?b\tc");
    }
}
