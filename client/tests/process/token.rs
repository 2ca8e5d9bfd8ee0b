//! Access control from the client's side: against a function started with `SLBLUR_TOKEN_FILE`,
//! `--token-file` with the right token gets answers with faces; no token or a wrong one gets
//! failed rows that say 401 unauthorized; an unusable token file stops the client before any
//! request. The token itself appears in no output, results file or run record.

use std::path::Path;

use crate::support::{
    Results, assert_real_ok_row, client, grid_args, path_str, rows, run_args, run_folder,
    start_function_with, text,
};

const TOKEN: &str = "tok-9f2c51e0b7d4a3";

fn token_file(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write token file");
    path_str(&path).to_string()
}

/// Every row failed with 401 and a message saying why.
fn assert_unauthorized(csv: &Path) {
    let rows = rows(csv);
    assert!(!rows.is_empty(), "no rows");
    for row in &rows {
        assert!(!row.ok, "{row:?}");
        assert_eq!(row.status, Some(401), "{row:?}");
        assert!(
            row.error.starts_with("HTTP 401 Unauthorized") && row.error.contains("unauthorized"),
            "{row:?}"
        );
    }
}

#[test]
fn token_file_opens_a_protected_function() {
    let results = Results::new();
    let dir = results.dir.path();
    // As a secret file may hold it: surrounded by whitespace.
    let server_file = token_file(dir, "server-token", &format!("{TOKEN}\n"));
    let function = start_function_with(&[("SLBLUR_TOKEN_FILE", &server_file)]);
    let frames = ["--frames", "2"];

    let right = token_file(dir, "right", &format!("  {TOKEN} \n"));
    let mut extra = frames.to_vec();
    extra.extend(["--token-file", &right]);
    let out = client(&run_args(&function.url, &results.csv, &extra));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stderr: {stderr}");
    let ok = rows(&results.csv);
    assert_eq!(ok.len(), 2);
    for row in &ok {
        assert_real_ok_row(row, true);
    }
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN));

    // Without a token, and with a wrong one: failed rows, each saying 401.
    let none = dir.join("none.csv");
    let out = client(&run_args(&function.url, &none, &frames));
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_unauthorized(&none);
    let wrong_file = token_file(dir, "wrong", "tok-wrong");
    let wrong = dir.join("wrong.csv");
    let mut extra = frames.to_vec();
    extra.extend(["--token-file", &wrong_file]);
    let out = client(&run_args(&function.url, &wrong, &extra));
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_unauthorized(&wrong);

    // load (goose) sends it too; run.json records that a token was used, never the token.
    let out_dir = dir.join("load");
    let args = grid_args(
        "load",
        &[("default", &function.url)],
        &out_dir,
        &["--users", "2", "--frames", "1", "--token-file", &right],
    );
    let out = client(&args);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let folder = run_folder(&out_dir);
    assert_eq!(folder.rows.len(), 2);
    assert!(folder.rows.iter().all(|r| r.ok), "{:?}", folder.rows);
    assert_eq!(folder.manifest["token"], true);
    for file in ["run.json", "results.csv", "cells.csv"] {
        let content = std::fs::read_to_string(out_dir.join(file)).expect(file);
        assert!(!content.contains(TOKEN), "{file} holds the token");
    }
    let csv = std::fs::read_to_string(&results.csv).expect("results");
    assert!(!csv.contains(TOKEN));
}

#[test]
fn unusable_token_file_stops_before_any_request() {
    let results = Results::new();
    let dir = results.dir.path();
    let empty = token_file(dir, "empty", " \n");
    let missing = dir.join("missing");
    // No function is needed: the client must stop before it sends anything.
    let url = "http://127.0.0.1:9/";
    for (file, message) in [
        (empty.clone(), format!("the token file '{empty}' is empty")),
        (
            path_str(&missing).to_string(),
            format!("cannot read the token file '{}'", missing.display()),
        ),
    ] {
        let out = client(&run_args(url, &results.csv, &["--token-file", &file]));
        assert_refused(&out, &message);
        assert!(
            !results.csv.exists(),
            "no results for a run that never started"
        );

        let out_dir = dir.join("sweep");
        let args = grid_args(
            "sweep",
            &[("default", url)],
            &out_dir,
            &["--token-file", &file],
        );
        assert_refused(&client(&args), &message);
        assert!(
            !out_dir.exists(),
            "no run folder for a sweep that never started"
        );
    }
}

/// The client stopped with exit 1 and `message` on stderr.
fn assert_refused(out: &std::process::Output, message: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains(message),
        "expected {message:?} in: {stderr}"
    );
}
