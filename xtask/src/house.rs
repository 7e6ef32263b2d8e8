//! The house rules `cargo xtask test` keeps: no source file over
//! [`MAX_FILE_LINES`] lines of non-test code, no function over
//! [`MAX_FN_LINES`] lines outside tests. Files past those sizes were where
//! newcomers got lost; a change that grows one fails here, by name.
use std::path::Path;

use anyhow::{bail, Result};

const MAX_FILE_LINES: usize = 800;
const MAX_FN_LINES: usize = 80;
/// Where the product's code lives (tests/tests holds only tests).
const TREES: [&str; 6] = [
    "ipmp-common/src",
    "ipmp-ebpf/src",
    "ipmp-user/src",
    "tests/src",
    "xtask/src",
    "ipmp-user/build.rs",
];

pub fn check(workspace: &Path) -> Result<()> {
    let mut problems = Vec::new();
    for tree in TREES {
        for file in rust_files(&workspace.join(tree)) {
            let text = std::fs::read_to_string(&file)?;
            let shown = file.strip_prefix(workspace).unwrap_or(&file).display();
            problems.extend(
                problems_of(&text)
                    .into_iter()
                    .map(|p| format!("{shown}: {p}")),
            );
        }
    }
    if !problems.is_empty() {
        bail!(
            "the house rules (xtask/src/house.rs) are broken; split these:\n  {}",
            problems.join("\n  ")
        );
    }
    println!(
        "house rules: no file over {MAX_FILE_LINES} lines of code, no function over {MAX_FN_LINES}"
    );
    Ok(())
}

fn rust_files(root: &Path) -> Vec<std::path::PathBuf> {
    if root.is_file() {
        return vec![root.to_path_buf()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The rules `text` (one source file) breaks. Its code ends where its
/// `#[cfg(test)] mod tests {` begins; a function runs from its `fn` line
/// to the first line that closes a brace at the same indentation.
fn problems_of(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let code = lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && is_inline_module(w[1]))
        .unwrap_or(lines.len());
    let mut problems = Vec::new();
    if code > MAX_FILE_LINES {
        problems.push(format!("{code} lines of code (at most {MAX_FILE_LINES})"));
    }
    for (start, line) in lines[..code].iter().enumerate() {
        let Some(name) = fn_name(line) else { continue };
        let indent = line.len() - line.trim_start().len();
        let end = lines[start + 1..code]
            .iter()
            .position(|l| closes_at(l, indent))
            .map_or(code, |i| start + 1 + i);
        let length = end - start + 1;
        if length > MAX_FN_LINES {
            problems.push(format!(
                "fn {name} at line {} is {length} lines (at most {MAX_FN_LINES})",
                start + 1
            ));
        }
    }
    problems
}

fn is_inline_module(line: &str) -> bool {
    let line = line.trim();
    (line.starts_with("mod ") || line.starts_with("pub mod ")) && line.ends_with('{')
}

/// The name of the function a line starts, if it starts one with a body.
fn fn_name(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    if trimmed.starts_with("//") || trimmed.ends_with(';') {
        return None;
    }
    let words: Vec<&str> = trimmed.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "fn")?;
    let modifiers = [
        "pub",
        "pub(crate)",
        "pub(super)",
        "const",
        "async",
        "unsafe",
        "extern",
        "\"C\"",
    ];
    if !words[..at].iter().all(|w| modifiers.contains(w)) {
        return None;
    }
    let name = words.get(at + 1)?;
    Some(name.split(['(', '<']).next().unwrap_or(name))
}

fn closes_at(line: &str, indent: usize) -> bool {
    line.len() - line.trim_start().len() == indent && line.trim_start().starts_with('}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(name: &str, body_lines: usize) -> String {
        let mut f = format!("pub fn {name}() {{\n");
        for _ in 0..body_lines {
            f.push_str("    step();\n");
        }
        f.push_str("}\n");
        f
    }

    #[test]
    fn long_functions_and_files_are_named() {
        let text = function("short", 78) + &function("long", 79);
        assert_eq!(
            problems_of(&text),
            ["fn long at line 81 is 81 lines (at most 80)"]
        );
        let big = "const X: u8 = 0;\n".repeat(801);
        assert_eq!(problems_of(&big), ["801 lines of code (at most 800)"]);
    }

    #[test]
    fn tests_and_declarations_do_not_count() {
        let text = "trait T {\n    fn declared(&self);\n}\n".to_string()
            + &"const X: u8 = 0;\n".repeat(790)
            + "#[cfg(test)]\nmod tests {\n"
            + &function("long_test", 200)
            + "}\n";
        assert!(problems_of(&text).is_empty());
    }

    #[test]
    fn methods_end_at_their_own_brace() {
        let text = format!(
            "impl A {{\n    fn a(&self) {{\n        if x {{\n        }}\n    }}\n{}}}\n",
            "    fn b(&self) {\n    }\n"
        );
        assert!(problems_of(&text).is_empty());
    }
}
