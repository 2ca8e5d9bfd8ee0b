//! Asynchronous targets through `slblur-client async-standin`, the stand-in for OpenFaaS's
//! asynchronous path (202, queue, queue worker, callbacks) in front of the real function: rows
//! beside synchronous ones, each misbehaving callback as the right row, bad callbacks refused
//! and counted, pending requests written as failed on Ctrl-C.

use std::time::Duration;

use slblur_client::record::{Invocation, Row};

use crate::support::{
    Results, Standin, bench_args, client, client_plain, grid_args, path_str, rows, run_folder,
    spawn_client, start_function, summary_of, text, wait_for_lines,
};

fn assert_async_ok(row: &Row) {
    assert!(row.ok, "{row:?}");
    assert_eq!(
        (row.invocation, row.status),
        (Invocation::Async, Some(200)),
        "{row:?}"
    );
    let accepted = row.accepted_ms.expect("accepted_ms");
    let (total, queue) = (
        row.total_ms
            .expect("total_ms from the callback's Server-Timing"),
        row.async_queue_ms.expect("async_queue_ms"),
    );
    assert!(accepted <= row.rtt_ms && total <= row.rtt_ms, "{row:?}");
    assert!(queue >= 0.0 && queue <= row.rtt_ms, "{row:?}");
    assert!(row.call_id.starts_with("standin-"), "{row:?}");
    assert!(row.faces.is_some_and(|f| f >= 1), "{row:?}");
}

#[test]
fn sync_and_async_targets_run_side_by_side() {
    let function = start_function();
    let standin = Standin::start(&function.url, &[]);
    let results = Results::new();
    let out = results.dir.path().join("run");
    let mut args = grid_args(
        "sweep",
        &[("sync", &standin.sync_url())],
        &out,
        &["--users", "1,2", "--think", "0", "--frames", "4"],
    );
    args.extend([
        "--async-target".into(),
        format!("async={}", standin.async_url()),
    ]);
    let done = client(&args);
    summary_of(&done);
    let folder = run_folder(&out);
    let (sync, asynchronous): (Vec<&Row>, Vec<&Row>) =
        folder.rows.iter().partition(|r| r.target == "sync");
    assert_eq!((sync.len(), asynchronous.len()), (12, 12));
    assert!(
        sync.iter()
            .all(|r| r.ok && r.invocation == Invocation::Sync && r.accepted_ms.is_none())
    );
    asynchronous.iter().for_each(|r| assert_async_ok(r));
    let targets = folder.manifest["targets"].as_array().expect("targets");
    assert_eq!(targets[1]["invocation"], "async");
    let cells = folder.manifest["cells"].as_array().expect("cells");
    let async_cell = cells
        .iter()
        .find(|c| c["target"] == "async")
        .expect("async cell");
    assert_eq!(async_cell["callbacks"]["matched"], 4);
    assert_eq!(async_cell["callbacks"]["unknown"], 0);

    // The report keeps them apart: the async cells with their queue share, modelled as one
    // queue whose worker makes one call at a time.
    let report = results.dir.path().join("report");
    let made = client_plain(&["report", path_str(&out), "--out", path_str(&report)]);
    let said = text(&made.stdout);
    assert!(made.status.success(), "{said}{}", text(&made.stderr));
    assert!(
        said.contains("model async: ") && said.contains("c = 1 (the queue worker's"),
        "{said}"
    );
    let mut summary = csv::Reader::from_path(report.join("summary.csv")).expect("summary.csv");
    let header = summary.headers().expect("header").clone();
    let column = |name: &str| header.iter().position(|h| h == name).expect(name);
    let records: Vec<csv::StringRecord> = summary.records().map(|r| r.expect("row")).collect();
    for record in &records {
        let asynchronous = &record[column("target")] == "async";
        assert_eq!(
            &record[column("invocation")],
            if asynchronous { "async" } else { "sync" }
        );
        let share = &record[column("async_queue_share")];
        assert_eq!(share.is_empty(), !asynchronous, "{record:?}");
        if asynchronous {
            let share: f64 = share.parse().expect("a share");
            assert!((0.0..1.0).contains(&share), "{record:?}");
        }
    }
}

#[test]
fn misbehaving_callbacks_become_the_right_rows_and_bad_ones_are_refused() {
    let function = start_function();
    // Call 2's callback comes 1.5 s late (after the 1 s timeout), 4's never, 6's twice,
    // 8's reports a failed function; call 3's comes with stray callbacks beside it.
    let faults = [
        "--late",
        "2",
        "--late-by",
        "1.5",
        "--lose",
        "4",
        "--duplicate",
        "6",
        "--fail",
        "8",
        "--stray",
        "3",
    ];
    let standin = Standin::start(&function.url, &faults);
    let results = Results::new();
    let args = bench_args(
        "run",
        &standin.async_url(),
        &results.csv,
        &[
            "--async",
            "--frames",
            "12",
            "--think",
            "0.1",
            "--timeout",
            "1",
        ],
    );
    let out = client(&args);
    summary_of(&out);
    let rows = rows(&results.csv);
    assert_eq!(rows.len(), 13, "12 requests and a duplicate's row");
    let by_frame = |f: u64| -> Vec<&Row> { rows.iter().filter(|r| r.frame == f).collect() };
    let no_callback = |row: &Row| {
        !row.ok && row.status == Some(202) && row.error.starts_with("no callback within 1s")
    };
    assert!(no_callback(by_frame(1)[0]), "{:?}", by_frame(1));
    assert!(no_callback(by_frame(3)[0]), "{:?}", by_frame(3));
    // The request's row and the duplicate's, in the order they finished (a duplicate that
    // comes before the request has read its callback is written first).
    let (answered, again): (Vec<&Row>, Vec<&Row>) = by_frame(5).into_iter().partition(|r| r.ok);
    assert_eq!((answered.len(), again.len()), (1, 1));
    assert_async_ok(answered[0]);
    assert!(
        again[0]
            .error
            .starts_with("duplicate callback for X-Call-Id standin-6")
    );
    let failed = by_frame(7)[0];
    assert_eq!((failed.ok, failed.status), (false, Some(500)), "{failed:?}");
    assert!(failed.error.contains("the function failed"), "{failed:?}");
    for f in [0, 2, 4, 6, 8, 9, 10, 11] {
        assert_async_ok(by_frame(f)[0]);
    }
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("refused 1 duplicate, 1 late, 1 unknown, 1 oversized, 1 malformed"),
        "{stderr}"
    );
}

#[test]
fn a_stopped_run_writes_its_pending_requests_as_failed() {
    let function = start_function();
    let standin = Standin::start(&function.url, &["--lose", "3"]);
    let results = Results::new();
    let args = bench_args(
        "run",
        &standin.async_url(),
        &results.csv,
        &["--async", "--timeout", "60"],
    );
    let child = spawn_client(&args);
    wait_for_lines(&results.csv, 3, Duration::from_secs(60));
    // The third call's callback never comes: the client waits for it until stopped.
    std::thread::sleep(Duration::from_millis(500));
    let pid = i32::try_from(child.id()).expect("pid fits i32");
    // SAFETY: plain kill(2) on our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let out = child.wait_with_output().expect("wait for client");
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let rows = rows(&results.csv);
    assert_eq!(rows.len(), 3, "{rows:?}");
    let pending = &rows[2];
    assert!(
        !pending.ok && pending.error == "stopped before the callback came for X-Call-Id standin-3"
    );
    assert!(pending.rtt_ms >= 500.0, "{pending:?}");
}

#[test]
fn frames_too_large_for_the_queue_are_warned_about_and_refused() {
    let function = start_function();
    let standin = Standin::start(&function.url, &[]);
    let results = Results::new();
    let args = bench_args(
        "run",
        &standin.async_url(),
        &results.csv,
        &[
            "--async", "--frames", "1", "--format", "png", "--width", "3840",
        ],
    );
    let out = client(&args);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("OpenFaaS's queue (NATS) takes about 1024 KB per message"),
        "{stderr}"
    );
    let rows = rows(&results.csv);
    assert_eq!(rows[0].status, Some(500));
    assert!(
        rows[0].error.contains("maximum payload exceeded"),
        "{:?}",
        rows[0]
    );
}
