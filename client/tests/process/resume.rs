//! `sweep --resume`: a sweep killed mid-cell and run again completes the missing cells only;
//! complete cells keep their rows, the unfinished cell's rows are set aside, not lost.

use crate::support;

use std::time::{Duration, Instant};

use crate::support::{
    Results, client, grid_args, rows, run_folder, spawn_client, start_function, summary_of,
};

#[test]
fn a_killed_sweep_resumes_where_it_stopped() {
    let function = start_function();
    let results = Results::new();
    let out = results.dir.path().join("run");
    let extra = ["--users", "1", "--think", "0,0.4", "--frames", "6"];
    let args = grid_args("sweep", &[("f", &function.url)], &out, &extra);
    let mut child = spawn_client(&args);
    // Kill it once the first cell is complete and the second has started.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "the sweep did not get into its second cell"
        );
        let done = std::fs::read_to_string(out.join("run.json"))
            .is_ok_and(|t| t.contains("\"complete\": true"));
        let lines =
            std::fs::read_to_string(out.join("results.csv")).map_or(0, |t| t.lines().count());
        // Header, the first cell, and at least one row of the second.
        if done && lines > 1 + 6 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill the sweep");
    child.wait().expect("reap");
    let before = rows(&out.join("results.csv"));
    let first_cell: Vec<_> = before
        .iter()
        .filter(|r| r.think_s == 0.0)
        .cloned()
        .collect();
    assert_eq!(first_cell.len(), 6);
    let partial = before.len() - 6;
    assert!(
        (1..6).contains(&partial),
        "{partial} rows of the second cell"
    );

    summary_of(&client(
        &[args.as_slice(), &["--resume".to_string()]].concat(),
    ));
    let run = run_folder(&out);
    assert_eq!(run.rows.len(), 12, "6 frames × 2 cells, no duplicates");
    let kept: Vec<_> = run
        .rows
        .iter()
        .filter(|r| r.think_s == 0.0)
        .cloned()
        .collect();
    assert_eq!(kept, first_cell, "the complete cell was not run again");
    let second: Vec<u64> = run
        .rows
        .iter()
        .filter(|r| r.think_s == 0.4)
        .map(|r| r.frame)
        .collect();
    assert_eq!(
        second,
        [0, 1, 2, 3, 4, 5],
        "the unfinished cell ran again, whole"
    );
    assert!(
        run.rows.iter().all(|r| r.run_id == first_cell[0].run_id),
        "same run id"
    );
    assert_eq!(
        rows(&out.join("interrupted.csv")).len(),
        partial,
        "unfinished rows set aside"
    );
    assert_eq!(run.summary.len(), 2);

    // Without --resume, a folder that holds a run is refused.
    let again = client(&args);
    assert_eq!(again.status.code(), Some(1));
    assert!(support::text(&again.stderr).contains("add --resume"));
}
