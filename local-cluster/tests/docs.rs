//! The documentation site (`docs/`, built with mdBook): the generated references are
//! current, the book builds without a warning, every page is in the table of contents, and
//! every relative link — to a page, and to a heading in it — leads somewhere.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn docs() -> PathBuf {
    root().join("docs")
}

/// Every Markdown page under docs/, relative to it.
fn pages() -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(&docs(), &docs(), &mut out);
    out.sort();
    out
}

#[test]
fn the_generated_references_are_current() {
    for (page, text) in strom_local_cluster::docgen::pages(&root()).unwrap() {
        let committed = std::fs::read_to_string(docs().join(&page)).unwrap_or_default();
        assert!(
            committed == text,
            "docs/{page} is stale: run `cargo run -p strom-local-cluster --bin strom-local -- docs`"
        );
    }
}

#[test]
fn the_book_builds_without_warnings() {
    let mdbook = root().join("target/tools/mdbook/bin/mdbook");
    assert!(
        mdbook.is_file(),
        "{} is missing: run scripts/install-tools.sh",
        mdbook.display()
    );
    let out_dir = std::env::temp_dir().join(format!("strom-book-{}", std::process::id()));
    let out = Command::new(mdbook)
        .args(["build", "docs", "--dest-dir"])
        .arg(&out_dir)
        .current_dir(root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mdbook build failed:\n{stderr}");
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    assert!(complaints.is_empty(), "{}", complaints.join("\n"));
    // Every page became HTML, the generated references included.
    for page in [
        "getting-started",
        "runbooks",
        "reference/flinkjob",
        "reference/control-plane-api",
    ] {
        assert!(
            out_dir.join(format!("{page}.html")).is_file(),
            "{page}.html missing"
        );
    }
    let _ = std::fs::remove_dir_all(&out_dir);
}

#[test]
fn every_page_is_in_the_table_of_contents() {
    let summary = std::fs::read_to_string(docs().join("SUMMARY.md")).unwrap();
    let missing: Vec<String> = pages()
        .into_iter()
        .filter(|p| p != "SUMMARY.md" && !summary.contains(&format!("({p})")))
        .collect();
    assert!(missing.is_empty(), "not in docs/SUMMARY.md: {missing:?}");
}

/// The heading ids mdBook gives a page: lower case, alphanumerics, `-` and `_` kept, spaces
/// to `-`, everything else dropped; a repeated id gets `-1`, `-2`, ….
fn heading_ids(text: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if in_code || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let id: String = title
            .chars()
            .filter_map(|c| {
                if c.is_alphanumeric() || c == '_' || c == '-' {
                    Some(c.to_ascii_lowercase())
                } else if c.is_whitespace() {
                    Some('-')
                } else {
                    None
                }
            })
            .collect();
        let n = seen.entry(id.clone()).or_insert(0);
        ids.insert(if *n == 0 {
            id.clone()
        } else {
            format!("{id}-{n}")
        });
        *n += 1;
    }
    ids
}

/// The targets of `[text](target)` links outside code.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if in_code {
            continue;
        }
        // Inline code can hold brackets that are not links.
        let line: String = line.split('`').step_by(2).collect::<Vec<_>>().join("");
        let mut rest = line.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            if let Some(end) = after.find(')') {
                out.push(after[..end].to_owned());
                rest = &after[end..];
            } else {
                break;
            }
        }
    }
    out
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(docs().join(&page)).unwrap();
        let dir = Path::new(&page).parent().unwrap().to_owned();
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = match link.split_once('#') {
                Some((f, a)) => (f.to_owned(), Some(a.to_owned())),
                None => (link.clone(), None),
            };
            let target = if file.is_empty() {
                docs().join(&page)
            } else {
                docs().join(&dir).join(&file)
            };
            checked += 1;
            let Ok(target_text) = std::fs::read_to_string(&target) else {
                broken.push(format!("{page}: {link}: no such file"));
                continue;
            };
            if let Some(anchor) = anchor
                && target.extension().is_some_and(|e| e == "md")
                && !heading_ids(&target_text).contains(&anchor)
            {
                broken.push(format!("{page}: {link}: no heading with id {anchor}"));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    assert!(checked > 100, "only {checked} links checked");
}

#[test]
fn heading_ids_follow_mdbook() {
    let ids = heading_ids(
        "# CRD upgrades\n## `spec.checkpoints`\n```\n# not a heading\n```\n## CRD upgrades\n",
    );
    assert_eq!(
        ids,
        BTreeSet::from([
            "crd-upgrades".to_owned(),
            "crd-upgrades-1".to_owned(),
            "speccheckpoints".to_owned()
        ])
    );
}
