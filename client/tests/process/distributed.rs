//! Distributed workers: W processes share every cell's users, start each cell in the same time
//! slot, and `merge` combines their folders into exactly the rows one process would write.

use crate::support;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use crate::support::{
    Results, client, grid_args, run_folder, spawn_client, start_function, summary_of, text,
};

type Key = (String, u32, u64, u32, u64, u64, bool);

fn keys(rows: &[slblur_client::record::Row]) -> BTreeSet<Key> {
    rows.iter()
        .map(|r| {
            (
                r.target.clone(),
                r.users,
                r.think_s.to_bits(),
                r.user_id,
                r.frame,
                r.iteration,
                r.ok,
            )
        })
        .collect()
}

#[test]
fn two_workers_merged_equal_one_process() {
    let function = start_function();
    let results = Results::new();
    let base = results.dir.path();
    let cells = ["--users", "1,3", "--think", "0", "--frames", "2"];
    let start =
        humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(4)).to_string();
    let targets = [("f", function.url.as_str())];
    let workers: Vec<_> = (0..2)
        .map(|i| {
            let index = i.to_string();
            let extra = [
                &cells[..],
                &[
                    "--workers",
                    "2",
                    "--worker-index",
                    &index,
                    "--start-at",
                    &start,
                    "--slot",
                    "5s",
                ],
            ]
            .concat();
            spawn_client(&grid_args(
                "sweep",
                &targets,
                &base.join(format!("w{i}")),
                &extra,
            ))
        })
        .collect();
    for child in workers {
        let out = child.wait_with_output().expect("worker");
        assert!(out.status.success(), "worker failed: {}", text(&out.stderr));
    }
    let w1 = run_folder(&base.join("w1"));
    assert!(w1.rows.iter().all(|r| r.worker == 1 && r.user_id % 2 == 1));
    assert_eq!(
        w1.manifest["run_id"],
        run_folder(&base.join("w0")).manifest["run_id"]
    );

    let merged = base.join("merged");
    let w0 = base.join("w0");
    let w1_dir = base.join("w1");
    let out = support::client_plain(&[
        "merge",
        support::path_str(&w0),
        support::path_str(&w1_dir),
        "--out",
        support::path_str(&merged),
    ]);
    assert!(out.status.success(), "merge failed: {}", text(&out.stderr));
    let merged = run_folder(&merged);

    let single = base.join("single");
    summary_of(&client(&grid_args("sweep", &targets, &single, &cells)));
    let single = run_folder(&single);
    assert_eq!(merged.rows.len(), single.rows.len());
    assert_eq!(keys(&merged.rows), keys(&single.rows));
    assert_eq!(merged.summary.len(), 2);
    assert_eq!(
        &merged.summary[1][4], "6",
        "3 users × 2 frames in the merged cell"
    );

    // A lone worker is merged with a warning naming the missing one.
    let partial = base.join("partial");
    let out = support::client_plain(&[
        "merge",
        support::path_str(&w0),
        "--out",
        support::path_str(&partial),
    ]);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("worker 1 is missing"),
        "{}",
        text(&out.stderr)
    );
    // Folders of different runs are refused.
    let out = support::client_plain(&[
        "merge",
        support::path_str(&w0),
        support::path_str(&base.join("single")),
        "--out",
        support::path_str(&partial),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("only workers of one run can be merged"),
        "{}",
        text(&out.stderr)
    );
}
