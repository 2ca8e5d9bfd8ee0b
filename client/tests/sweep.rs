//! `sweep`: users × think cells, one after another, all rows in one CSV, a summary per cell.

mod common;

use std::collections::BTreeSet;

use common::{
    FakeServer, Results, assert_real_ok_row, client, rows, start_function, summary_of, sweep_args,
};

#[test]
fn every_cell_runs_its_users_into_one_file() {
    let function = start_function();
    let results = Results::new();
    let extra = ["--users", "1,2", "--think", "0,0.2", "--frames", "2"];
    let summary = summary_of(&client(&sweep_args(&function.url, &results.csv, &extra)));
    let rows = rows(&results.csv);
    assert_eq!(rows.len(), (1 + 2) * 2 * 2);
    rows.iter().for_each(|r| assert_real_ok_row(r, true));
    assert!(rows.iter().all(|r| r.run_id == rows[0].run_id));

    let cells = summary["cells"].as_array().expect("cells array");
    let expected = [(1, 0.0), (1, 0.2), (2, 0.0), (2, 0.2)];
    assert_eq!(cells.len(), expected.len());
    for (cell, (users, think)) in cells.iter().zip(expected) {
        assert_eq!(
            (cell["users"].as_u64(), cell["think_s"].as_f64()),
            (Some(users), Some(think))
        );
        assert_eq!(cell["ok"].as_u64(), Some(2 * users));
        let in_cell: Vec<_> = rows
            .iter()
            .filter(|r| u64::from(r.users) == users && r.think_s == think)
            .collect();
        assert_eq!(in_cell.len() as u64, 2 * users);
        let ids: BTreeSet<u32> = in_cell.iter().map(|r| r.user_id).collect();
        assert_eq!(ids, (0..users as u32).collect());
        for id in ids {
            let frames: Vec<u64> = in_cell
                .iter()
                .filter(|r| r.user_id == id)
                .map(|r| r.frame)
                .collect();
            assert_eq!(frames, [0, 1], "each user sends the frames in order");
        }
    }
    // Cells run one after another: rows come grouped by cell, each group starting after the last.
    let keys: Vec<(u32, f64)> = rows.iter().map(|r| (r.users, r.think_s)).collect();
    let mut grouped = keys.clone();
    grouped.dedup();
    assert_eq!(
        grouped,
        expected.map(|(u, t)| (u as u32, t)),
        "rows of a cell are contiguous, in cell order"
    );
    for pair in expected.windows(2) {
        let starts = |(u, t): (u64, f64)| {
            rows.iter()
                .filter(move |r| u64::from(r.users) == u && r.think_s == t)
                .map(common::started_at)
        };
        let last_of_first = starts(pair[0]).max().expect("rows in cell");
        let first_of_next = starts(pair[1]).min().expect("rows in cell");
        assert!(first_of_next >= last_of_first, "cells overlapped");
    }
}

#[test]
fn loop_wraps_around_the_video_with_iterations() {
    let server = FakeServer::echo(std::time::Duration::ZERO);
    let results = Results::new();
    let extra = [
        "--users", "2", "--think", "0", "--loop", "--frames", "45", "--width", "160",
    ];
    summary_of(&client(&sweep_args(&server.url, &results.csv, &extra)));
    let rows = rows(&results.csv);
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
