//! `sweep` and `load` with goose: targets alternate cell by cell, every request is one row with
//! the target, instance and queue columns, and the run folder holds the summary, run.json and
//! goose's own reports of each cell.

use crate::support;

use std::collections::BTreeSet;

use crate::support::{
    FakeServer, Results, assert_real_ok_row, client, grid_args, run_folder, start_function,
    summary_of, sweep_args,
};

#[test]
fn two_targets_alternate_over_a_users_by_think_grid() {
    let (a, b) = (start_function(), start_function());
    let results = Results::new();
    let out = results.dir.path().join("run");
    let extra = ["--users", "1,2", "--think", "0,0.2", "--frames", "2"];
    let summary = summary_of(&client(&grid_args(
        "sweep",
        &[("a", &a.url), ("b", &b.url)],
        &out,
        &extra,
    )));
    let run = run_folder(&out);
    // frames × users, per think time, per target.
    assert_eq!(run.rows.len(), 2 * (1 + 2) * 2 * 2);
    for row in &run.rows {
        assert_real_ok_row(row, true);
        assert!(!row.instance.is_empty(), "instance missing: {row:?}");
        assert_eq!(
            row.precision,
            Some(slblur_protocol::Precision::Fp32),
            "{row:?}"
        );
        assert!(row.queue_ms.is_some_and(|q| q >= 0.0), "{row:?}");
        assert_eq!(
            (row.worker, row.intended_at.as_str(), row.rate_per_s),
            (0, "", None)
        );
    }
    // Cells run one after another, targets alternating within each load point.
    let mut order: Vec<(String, u32, f64)> = run
        .rows
        .iter()
        .map(|r| (r.target.clone(), r.users, r.think_s))
        .collect();
    order.dedup();
    let expected: Vec<(String, u32, f64)> = [(1, 0.0), (1, 0.2), (2, 0.0), (2, 0.2)]
        .iter()
        .flat_map(|&(u, t)| ["a", "b"].map(|name| (name.to_string(), u, t)))
        .collect();
    assert_eq!(
        order, expected,
        "rows come grouped by cell, in A, B, A, B order"
    );
    for (target, users, think) in &expected {
        let cell: Vec<_> = run
            .rows
            .iter()
            .filter(|r| (&r.target, r.users, r.think_s) == (target, *users, *think))
            .collect();
        let ids: BTreeSet<u32> = cell.iter().map(|r| r.user_id).collect();
        assert_eq!(ids, (0..*users).collect(), "{target} {users} {think}");
        for id in ids {
            let frames: Vec<u64> = cell
                .iter()
                .filter(|r| r.user_id == id)
                .map(|r| r.frame)
                .collect();
            assert_eq!(frames, [0, 1], "each user sends the frames in order");
        }
    }
    assert_eq!(run.summary.len(), 8, "one cells.csv row per cell");
    assert!(
        run.summary.iter().all(|r| &r[7] == "1"),
        "success rate 1 everywhere"
    );
    let cells = run.manifest["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 8);
    assert!(cells.iter().all(|c| c["complete"] == true));
    assert_eq!(run.manifest["targets"][1]["name"], "b");
    assert!(run.manifest["cores"].as_u64().is_some_and(|c| c >= 1));
    for cell in cells {
        let key = cell["key"].as_str().expect("key");
        for ext in ["html", "json", "md"] {
            let report = out.join("goose").join(format!("{key}.{ext}"));
            let text = std::fs::read_to_string(&report)
                .unwrap_or_else(|e| panic!("{}: {e}", report.display()));
            // goose's report carries the custom round-trip and server-time requests.
            assert!(
                text.contains("rtt") && text.contains("frame"),
                "{}",
                report.display()
            );
        }
    }
    assert_eq!(summary["cells"].as_array().map(Vec::len), Some(8));
}

#[test]
fn load_runs_one_cell_and_loops_around_the_video() {
    let server = FakeServer::echo(std::time::Duration::ZERO);
    let results = Results::new();
    let out = results.dir.path().join("loop");
    let extra = ["--users", "2", "--loop", "--frames", "45", "--width", "160"];
    let mut args = sweep_args(&server.url, &out, &extra);
    args[0] = "load".into();
    summary_of(&client(&args));
    let rows = run_folder(&out).rows;
    assert_eq!(rows.len(), 90);
    let user0: Vec<(u64, u64)> = rows
        .iter()
        .filter(|r| r.user_id == 0)
        .map(|r| (r.iteration, r.frame))
        .collect();
    assert_eq!(user0[39], (0, 39));
    assert_eq!(user0[40], (1, 0));
    assert_eq!(user0[44], (1, 4));
}

#[test]
fn ramp_up_starts_users_evenly() {
    let server = FakeServer::echo(std::time::Duration::ZERO);
    let results = Results::new();
    let out = results.dir.path().join("ramp");
    let extra = [
        "--users",
        "3",
        "--think",
        "0",
        "--frames",
        "1",
        "--ramp-up",
        "1.5s",
    ];
    summary_of(&client(&sweep_args(&server.url, &out, &extra)));
    let rows = run_folder(&out).rows;
    let mut starts: Vec<_> = rows.iter().map(support::started_at).collect();
    starts.sort();
    let spread = starts[2].duration_since(starts[0]).expect("ordered");
    // JMeter's ramp-up: user i starts at i × period / users, so the last one 1 s in.
    assert!(
        spread.as_secs_f64() > 0.6,
        "users started together: {spread:?}"
    );
}
