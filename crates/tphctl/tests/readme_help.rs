//! The README's table of subcommands and each subcommand's `--help` say the same thing: every
//! subcommand `tphctl --help` lists has a row and every row names a real subcommand; every
//! `--flag` a row names is in that subcommand's `--help`; every stdin command a row names for
//! `session` and `vm` is in the command list of their `--help`. Also `--version`.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tphctl"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "tphctl {args:?} --help");
    String::from_utf8(out.stdout).unwrap()
}

/// The rows of the README's "What `tphctl` does" table: (subcommand, whole row).
fn readme_rows() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(common::tests_dir("../../../README.md")).unwrap();
    let table = readme
        .split("## What `tphctl` does")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").nth(1))
        .unwrap();
    table
        .lines()
        .filter_map(|row| {
            let cmd = row.strip_prefix("| `tphctl ")?;
            let name = cmd.split([' ', '`']).next()?;
            Some((name.to_string(), row.to_string()))
        })
        .collect()
}

/// The subcommands `tphctl --help` lists (help itself apart).
fn subcommands() -> Vec<String> {
    let text = help(&[]);
    let list = text.split("Commands:").nth(1).unwrap();
    list.lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

/// Every `--flag` in `text`.
fn flags(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .match_indices("--")
        .filter_map(|(at, _)| {
            let name: String = text[at + 2..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                .collect();
            (name.len() > 1 && !text[..at].ends_with('-')).then(|| format!("--{name}"))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn every_subcommand_has_a_readme_row_and_every_row_a_subcommand() {
    let rows: Vec<String> = readme_rows().into_iter().map(|(name, _)| name).collect();
    let mut commands = subcommands();
    assert!(commands.len() >= 8, "{commands:?}");
    let mut listed = rows.clone();
    listed.sort();
    commands.sort();
    assert_eq!(listed, commands, "README rows vs `tphctl --help`");
}

#[test]
fn every_flag_a_readme_row_names_is_in_that_subcommands_help() {
    for (name, row) in readme_rows() {
        let text = help(&[&name]);
        for flag in flags(&row) {
            assert!(
                text.contains(&flag),
                "README names {flag} for `tphctl {name}`, its --help does not"
            );
        }
    }
}

#[test]
fn every_stdin_command_the_readme_names_is_in_the_help_command_list() {
    for (name, row) in readme_rows()
        .into_iter()
        .filter(|(n, _)| n == "session" || n == "vm")
    {
        let text = help(&[&name]);
        let list = text
            .split("Commands (one per line on stdin")
            .nth(1)
            .unwrap();
        let list = list.split("\n\n").next().unwrap();
        let named = row.split("on stdin (").nth(1).unwrap_or(&row);
        let named = named.split(';').next().unwrap();
        let words: Vec<&str> = named
            .split('`')
            .skip(1)
            .step_by(2)
            .filter_map(|c| c.split_whitespace().next())
            .collect();
        assert!(words.len() >= 5, "{name}: {words:?}");
        for w in words {
            assert!(
                list.contains(&format!("{w} ")) || list.contains(&format!("{w} |")),
                "README names the {name} command {w:?}, --help's command list does not: {list}"
            );
        }
    }
}

#[test]
fn version_is_the_package_version_however_it_is_asked() {
    let want = format!("tphctl {}\n", env!("CARGO_PKG_VERSION"));
    for flag in ["--version", "-V"] {
        let out = Command::new(env!("CARGO_BIN_EXE_tphctl"))
            .arg(flag)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8(out.stdout).unwrap(), want);
    }
}

/// Each subcommand's short help opens with the line `tphctl --help` lists for it: the
/// subcommands' arguments are added deferred (only for the one invoked), after that line, and
/// a doc comment on an arguments struct would silently replace it.
#[test]
fn each_subcommands_help_opens_with_its_line_in_the_command_list() {
    let text = help(&[]);
    let list = text.split("Commands:").nth(1).unwrap();
    let mut seen = 0;
    for line in list.lines().skip(1).take_while(|l| !l.trim().is_empty()) {
        let (name, about) = line.trim().split_once(char::is_whitespace).unwrap();
        if name == "help" {
            continue;
        }
        let out = Command::new(env!("CARGO_BIN_EXE_tphctl"))
            .args([name, "-h"])
            .output()
            .unwrap();
        assert!(out.status.success(), "tphctl {name} -h");
        let short = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            short.lines().next(),
            Some(about.trim()),
            "tphctl {name} -h opens with another text"
        );
        seen += 1;
    }
    assert_eq!(seen, subcommands().len());
}
