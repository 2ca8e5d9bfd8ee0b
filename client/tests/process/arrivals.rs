//! Bursts and trace replays (`--burst`, `--trace`): the seeded schedule is what is sent, two
//! runs send the same intended times, distributed workers split a trace exactly once, bad
//! traces and undrivable rates are refused before any request, and `report` shows the tails'
//! intervals and the model per window.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use slblur_client::rig::arrivals::{self, Process, Spread, TraceReplay};
use slblur_client::rig::plan;

use crate::support::{
    FakeServer, Results, client, client_plain, grid_args, path_str, run_folder, summary_of, text,
    workspace,
};

fn sample_trace() -> String {
    path_str(&workspace().join("samples/traces/azure-sample.csv")).to_string()
}

/// The bursty function of the sample, minutes 25-32 (a burst), 60 times faster, a tenth.
fn trace_options(trace: &str) -> Vec<String> {
    [
        "--trace",
        trace,
        "--trace-function",
        "287b",
        "--trace-minutes",
        "25-32",
        "--trace-speedup",
        "60",
        "--trace-scale",
        "0.1",
        "--trace-spread",
        "even",
        "--seed",
        "7",
        "--max-outstanding",
        "200",
        "--width",
        "160",
    ]
    .map(String::from)
    .to_vec()
}

fn load(url: &str, out: &Path, extra: &[String]) -> std::process::Output {
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    client(&grid_args("load", &[("f", url)], out, &extra))
}

fn intended_offsets(rows: &[slblur_client::record::Row]) -> Vec<Duration> {
    let at = |r: &slblur_client::record::Row| {
        humantime::parse_rfc3339(&r.intended_at).expect("intended_at")
    };
    let mut sorted: Vec<SystemTime> = rows.iter().map(at).collect();
    sorted.sort();
    sorted
        .iter()
        .map(|t| t.duration_since(sorted[0]).expect("ordered"))
        .collect()
}

#[test]
fn a_trace_replays_its_seeded_schedule_and_workers_split_it_once() {
    let server = FakeServer::echo(Duration::from_millis(5));
    let results = Results::new();
    let trace = sample_trace();
    let whole = results.dir.path().join("whole");
    summary_of(&load(&server.url, &whole, &trace_options(&trace)));
    let run = run_folder(&whole);
    assert!(
        run.rows
            .iter()
            .all(|r| r.ok && r.arrival == "trace" && r.users == 0)
    );
    // What was sent is the schedule the plan draws from the seed and the trace.
    let key = run.manifest["cells"][0]["key"].as_str().expect("key");
    let replay: TraceReplay =
        serde_json::from_value(run.manifest["trace"].clone()).expect("run.json keeps the trace");
    assert_eq!((replay.speedup, replay.spread), (60.0, Spread::Even));
    let expected = arrivals::schedule(
        7 ^ plan::seed_from(key),
        0.0,
        Process::Trace,
        Some(&replay),
        None,
        None,
    );
    assert_eq!(run.rows.len(), expected.len());
    let sent = intended_offsets(&run.rows);
    for (got, want) in sent.iter().zip(&expected) {
        let error = got.as_secs_f64() - (*want - expected[0]).as_secs_f64();
        assert!(error.abs() < 0.002, "arrival off by {error} s");
    }
    let rate = run.rows[0].rate_per_s.expect("mean rate");
    assert!((rate - replay.mean_rate()).abs() < 1e-9);

    // Two workers with the run's id and seed send every arrival once between them.
    let mut numbers = Vec::new();
    for worker in 0..2 {
        let out = results.dir.path().join(format!("w{worker}"));
        let mut extra = trace_options(&trace);
        extra.extend(
            [
                "--workers",
                "2",
                "--worker-index",
                &worker.to_string(),
                "--run-id",
                "split",
            ]
            .map(String::from),
        );
        summary_of(&load(&server.url, &out, &extra));
        numbers.extend(run_folder(&out).rows.iter().map(|r| r.user_id));
    }
    let distinct: BTreeSet<u32> = numbers.iter().copied().collect();
    assert_eq!(
        (numbers.len(), distinct.len()),
        (expected.len(), expected.len())
    );
}

#[test]
fn bursts_and_traces_report_tails_and_windows() {
    let server = FakeServer::echo(Duration::from_millis(2));
    let results = Results::new();
    let out = results.dir.path().join("mixed");
    let mut extra = trace_options(&sample_trace());
    extra.extend(["--burst", "60:2:1:2", "--duration", "6"].map(String::from));
    let args: Vec<String> = grid_args("sweep", &[("f", &server.url)], &out, &[])
        .into_iter()
        .chain(extra)
        .collect();
    let done = client(&args);
    summary_of(&done);
    let rows = run_folder(&out).rows;
    let bursts: Vec<_> = rows
        .iter()
        .filter(|r| r.arrival == "burst:60:2:1:2")
        .collect();
    assert!(bursts.len() > 20, "{}", bursts.len());
    assert!(bursts.iter().all(|r| r.late_ms.is_some_and(|l| l >= 0.0)));
    let report = results.dir.path().join("report");
    let made = client_plain(&["report", path_str(&out), "--out", path_str(&report)]);
    let said = text(&made.stdout);
    assert!(made.status.success(), "{said}{}", text(&made.stderr));
    assert!(
        said.contains("model per window, f burst 60/2 1s/2s"),
        "{said}"
    );
    for file in [
        "windows.csv",
        "rtt_percentiles.png",
        "timeline_1.png",
        "timeline_2.png",
    ] {
        assert!(report.join(file).exists(), "{file} missing: {said}");
    }
    let windows = std::fs::read_to_string(report.join("windows.csv")).expect("windows.csv");
    assert!(
        windows.starts_with("target,load,width_s,start_s,arrivals,rate_per_s"),
        "{windows}"
    );
    // The trace's windows are one trace minute of the replay: 1 s at 60 times.
    assert!(
        windows
            .lines()
            .any(|l| l.starts_with("f,trace ") && l.contains(",1.0,")),
        "{windows}"
    );
    let summary = std::fs::read_to_string(report.join("summary.md")).expect("summary.md");
    assert!(
        summary.contains("(n<"),
        "a cell too small for a p99 interval says so: {summary}"
    );
}

#[test]
fn bad_traces_and_undrivable_rates_are_refused_before_any_request() {
    let server = FakeServer::echo(Duration::ZERO);
    let results = Results::new();
    let bad = results.dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "HashOwner,HashApp,HashFunction,Trigger,1,2,3\no,a,f,http,1,2,3\no,a,g,http,1,2,many\n",
    )
    .expect("write");
    let cases: [(Vec<String>, i32, String); 4] = [
        (
            vec!["--trace".into(), path_str(&bad).into()],
            2,
            format!(
                "{}: line 3, column 7 (minute 3): \"many\" is not a count",
                bad.display()
            ),
        ),
        (
            [
                "--trace",
                &sample_trace(),
                "--trace-function",
                "d996",
                "--trace-minutes",
                "1-10",
            ]
            .map(String::from)
            .to_vec(),
            2,
            "the selection has no invocations in minutes 1-10".into(),
        ),
        (
            ["--trace", &sample_trace(), "--trace-function", "zzzz"]
                .map(String::from)
                .to_vec(),
            2,
            "no function's HashFunction starts with 'zzzz'".into(),
        ),
        (
            // The diurnal function's peak hour, 6000 times faster: far past what 2 cores drive.
            [
                "--trace",
                &sample_trace(),
                "--trace-function",
                "cf70",
                "--trace-minutes",
                "800-900",
                "--trace-speedup",
                "6000",
            ]
            .map(String::from)
            .to_vec(),
            1,
            "-core machine drives".into(),
        ),
    ];
    for (i, (extra, status, message)) in cases.iter().enumerate() {
        let out = results.dir.path().join(format!("case{i}"));
        let done = load(&server.url, &out, extra);
        let stderr = text(&done.stderr);
        assert_eq!(done.status.code(), Some(*status), "{stderr}");
        assert!(
            stderr.contains(message.as_str()),
            "want {message:?} in {stderr}"
        );
        let rows = std::fs::read_to_string(out.join("results.csv")).unwrap_or_default();
        assert!(rows.lines().count() <= 1, "no request was sent: {rows}");
    }
}

#[test]
fn the_committed_sample_trace_is_what_its_script_makes() {
    let made = std::process::Command::new("python3")
        .arg(workspace().join("scripts/make-trace"))
        .arg("-")
        .output()
        .expect("run scripts/make-trace");
    assert!(made.status.success(), "{}", text(&made.stderr));
    let committed =
        std::fs::read(workspace().join("samples/traces/azure-sample.csv")).expect("sample");
    assert!(
        made.stdout == committed,
        "samples/traces/azure-sample.csv is stale: run scripts/make-trace"
    );
}
