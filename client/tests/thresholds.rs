//! `--threshold`: goose's declarative goals, judged on the round trip of every cell; a missed
//! goal fails the run with exit status 3 after every cell has run.

mod common;

use common::{Results, client, grid_args, run_folder, start_function, text};

#[test]
fn a_missed_goal_fails_the_run_and_a_met_one_passes() {
    let function = start_function();
    let results = Results::new();
    let targets = [("f", function.url.as_str())];
    let missed = results.dir.path().join("missed");
    let extra = [
        "--users",
        "1",
        "--frames",
        "3",
        "--threshold",
        "p95<1us",
        "--threshold",
        "error-rate<5%",
    ];
    let out = client(&grid_args("load", &targets, &missed, &extra));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("threshold failed") && stderr.contains("p95<1us"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("error-rate<5% for rtt frame (observed"),
        "{stderr}"
    );
    // The data is complete all the same.
    let run = run_folder(&missed);
    assert_eq!(run.rows.len(), 3);
    assert_eq!(
        run.manifest["cells"][0]["thresholds_failed"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let met = results.dir.path().join("met");
    let extra = [
        "--users",
        "1",
        "--frames",
        "3",
        "--threshold",
        "p95<20s",
        "--threshold",
        "error-rate<5%",
    ];
    let out = client(&grid_args("load", &targets, &met, &extra));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
