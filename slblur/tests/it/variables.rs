//! The `SLBLUR_*` variables are listed once in code (the server's and the function's lists,
//! which `--help` prints); the docs' tables must name exactly those.

use std::collections::BTreeSet;

use faas_server::settings::SERVER_VARIABLES;
use slblur::config::{NAME, var};

/// Every variable the function reads, by its full name.
fn in_code() -> BTreeSet<String> {
    SERVER_VARIABLES
        .iter()
        .chain(var::ALL)
        .map(|v| v.for_function(NAME))
        .collect()
}

/// `SLBLUR_…` names in the table rows of `docs/function.md`.
fn in_doc_tables() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/function.md");
    let text = std::fs::read_to_string(path).expect("docs/function.md");
    let mut names = BTreeSet::new();
    for row in text.lines().filter(|l| l.starts_with('|')) {
        for (at, _) in row.match_indices("`SLBLUR_") {
            let name: String = row[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    names
}

#[test]
fn the_docs_tables_name_every_variable_and_no_other() {
    let (code, docs) = (in_code(), in_doc_tables());
    let undocumented: Vec<_> = code.difference(&docs).collect();
    let unknown: Vec<_> = docs.difference(&code).collect();
    assert!(
        undocumented.is_empty(),
        "in code, missing from docs/function.md's tables: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "in docs/function.md's tables, not read by the function: {unknown:?}"
    );
}
