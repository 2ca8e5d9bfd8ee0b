//! `--threshold`: goose's declarative goals, judged on the round trip of every cell; a missed
//! goal fails the run with exit status 3 after every cell has run.

use crate::support::{Results, client, grid_args, run_folder, start_function, text};

#[test]
fn a_missed_goal_fails_the_run_and_a_met_one_passes() {
    let function = start_function();
    let results = Results::new();
    let targets = [("f", function.url.as_str())];
    // One user, three frames, a latency goal and an error goal.
    let load = |out: &std::path::Path, latency_goal: &str| {
        let extra = [
            "--users",
            "1",
            "--frames",
            "3",
            "--threshold",
            latency_goal,
            "--threshold",
            "error-rate<5%",
        ];
        client(&grid_args("load", &targets, out, &extra))
    };
    let missed = results.dir.path().join("missed");
    let out = load(&missed, "p95<1us");
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

    let out = load(&results.dir.path().join("met"), "p95<20s");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
