//! ARCHITECTURE.md and README.md stay true of the workspace: the crate table, the diagram, the
//! dependency list and the README's tour name exactly the workspace's members, the dependencies
//! between them are the ones their manifests declare, and `unsafe` lives only where the map says.
//!
//! Each check fails with the difference, so a new crate, a new dependency edge or a moved
//! `unsafe` block cannot land without the map being updated in the same change.
// Test code: a missing file or a malformed manifest fails the test loudly.
#![allow(clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn toml_of(path: &Path) -> toml::Table {
    read(path)
        .parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// The workspace's members, by package name, with their directories.
fn members() -> BTreeMap<String, PathBuf> {
    let root = root();
    let manifest = toml_of(&root.join("Cargo.toml"));
    let globs = manifest["workspace"]["members"]
        .as_array()
        .expect("workspace.members is an array");
    let mut dirs = Vec::new();
    for g in globs {
        let g = g.as_str().expect("a member is a string");
        if let Some(parent) = g.strip_suffix("/*") {
            for entry in std::fs::read_dir(root.join(parent)).expect("members' folder") {
                let path = entry.expect("a folder entry").path();
                if path.join("Cargo.toml").is_file() {
                    dirs.push(path);
                }
            }
        } else {
            dirs.push(root.join(g));
        }
    }
    dirs.into_iter()
        .map(|dir| {
            let m = toml_of(&dir.join("Cargo.toml"));
            let name = m["package"]["name"]
                .as_str()
                .expect("package.name")
                .to_owned();
            (name, dir)
        })
        .collect()
}

/// Every workspace crate a member's `[dependencies]` (not dev- or build-) names.
fn declared_deps(dir: &Path, members: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let m = toml_of(&dir.join("Cargo.toml"));
    let Some(deps) = m.get("dependencies").and_then(|d| d.as_table()) else {
        return BTreeSet::new();
    };
    deps.keys()
        .filter(|k| members.contains_key(*k))
        .cloned()
        .collect()
}

/// The text of ARCHITECTURE.md from `start` (a line prefix) to the next `## ` heading.
fn section<'a>(doc: &'a str, start: &str) -> &'a str {
    let a = doc
        .find(start)
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no {start:?}"));
    let rest = &doc[a + start.len()..];
    let b = rest.find("\n## ").unwrap_or(rest.len());
    &rest[..b]
}

/// Whether `name` stands in `text` as a whole word (`realm` is not found inside `realm-io`).
fn names(text: &str, name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

#[test]
fn crate_table_lists_exactly_the_members() {
    let doc = read(&root().join("ARCHITECTURE.md"));
    let map = section(&doc, "## Crate map");
    let mut landed = BTreeSet::new();
    let mut planned = BTreeSet::new();
    for line in map.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let name = cells[0].trim_matches('`').to_owned();
        let status = cells.last().expect("a row has cells");
        if status.starts_with("planned") {
            planned.insert(name);
        } else {
            landed.insert(name);
        }
    }
    let members: BTreeSet<String> = members().into_keys().collect();
    assert_eq!(
        landed, members,
        "ARCHITECTURE.md's crate table (rows not `planned`) must name exactly the workspace members"
    );
    let stray: Vec<_> = planned.intersection(&members).collect();
    assert!(
        stray.is_empty(),
        "members marked planned in the crate table: {stray:?}"
    );
}

#[test]
fn diagram_shows_every_member() {
    let doc = read(&root().join("ARCHITECTURE.md"));
    let map = section(&doc, "## Crate map");
    let fence = map.find("```").expect("the crate map has a diagram");
    let body = &map[fence + 3..];
    let diagram = &body[..body.find("```").expect("the diagram's fence closes")];
    let missing: Vec<String> = members()
        .into_keys()
        .filter(|name| !names(diagram, name))
        .collect();
    assert!(
        missing.is_empty(),
        "crates missing from ARCHITECTURE.md's diagram: {missing:?}"
    );
}

#[test]
fn dependency_list_matches_the_manifests() {
    let doc = read(&root().join("ARCHITECTURE.md"));
    let a = doc
        .find("<!-- deps:begin -->")
        .expect("ARCHITECTURE.md has a deps:begin marker");
    let b = doc
        .find("<!-- deps:end -->")
        .expect("ARCHITECTURE.md has a deps:end marker");
    let mut written = BTreeMap::new();
    for line in doc[a..b].lines().filter(|l| l.starts_with("- `")) {
        let (name, deps) = line[3..].split_once("`:").expect("`- `crate`: deps` lines");
        let deps: BTreeSet<String> = deps
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty() && *d != "(none)")
            .map(str::to_owned)
            .collect();
        written.insert(name.to_owned(), deps);
    }
    let members = members();
    let actual: BTreeMap<String, BTreeSet<String>> = members
        .iter()
        .map(|(name, dir)| (name.clone(), declared_deps(dir, &members)))
        .collect();
    assert_eq!(
        written, actual,
        "ARCHITECTURE.md's dependency list must be each member's [dependencies] on other members"
    );
}

#[test]
fn readme_tour_lists_every_member() {
    let readme = read(&root().join("README.md"));
    let missing: Vec<String> = members()
        .into_keys()
        .filter(|name| !readme.contains(&format!("| `crates/{name}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "crates missing from README.md's tour: {missing:?}"
    );
}

/// Only `realm-io` may hold `unsafe` (workspace lint `unsafe_code = "forbid"`), and each of its
/// `unsafe` blocks carries a `SAFETY:` note within the lines just above it.
#[test]
fn unsafe_only_in_realm_io_with_safety_notes() {
    let members = members();
    for (name, dir) in &members {
        let m = toml_of(&dir.join("Cargo.toml"));
        let inherits = m
            .get("lints")
            .and_then(|l| l.get("workspace"))
            .and_then(|w| w.as_bool())
            == Some(true);
        if name == "realm-io" {
            assert!(
                !inherits,
                "realm-io needs its own lints (it allows unsafe_code)"
            );
        } else {
            assert!(
                inherits,
                "{name} must inherit the workspace lints, which forbid unsafe"
            );
        }
    }
    let io = members
        .get("realm-io")
        .expect("realm-io is a member")
        .join("src");
    let mut unexplained = Vec::new();
    for entry in std::fs::read_dir(&io).expect("realm-io/src") {
        let path = entry.expect("a folder entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = read(&path);
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") || !code.contains("unsafe {") {
                continue;
            }
            let above = &lines[i.saturating_sub(8)..=i];
            if !above.iter().any(|l| l.contains("SAFETY")) {
                unexplained.push(format!("{}:{}", path.display(), i + 1));
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "unsafe blocks without a SAFETY note: {unexplained:?}"
    );
}
