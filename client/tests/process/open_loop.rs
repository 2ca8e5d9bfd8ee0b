//! Open loop (`--rate`): Poisson arrivals scheduled whether or not earlier requests finished,
//! latency from the intended time, and a bound on outstanding requests that turns excess into
//! failed rows.

use std::time::{Duration, SystemTime};

use crate::support::{
    FakeServer, Results, assert_real_ok_row, client, grid_args, run_folder, start_function,
    summary_of,
};
use slblur_client::rig::arrivals::{self, Process};
use slblur_client::rig::plan;

fn at(text: &str) -> SystemTime {
    humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("bad time {text:?}: {e}"))
}

#[test]
fn arrivals_follow_the_seeded_schedule() {
    let function = start_function();
    let results = Results::new();
    let out = results.dir.path().join("open");
    let extra = ["--rate", "8", "--frames", "10", "--seed", "42"];
    summary_of(&client(&grid_args(
        "load",
        &[("f", &function.url)],
        &out,
        &extra,
    )));
    let run = run_folder(&out);
    assert_eq!(run.rows.len(), 10);
    let mut rows = run.rows.clone();
    rows.sort_by_key(|r| r.user_id);
    for (k, row) in rows.iter().enumerate() {
        assert_real_ok_row(row, true);
        assert_eq!((row.user_id, row.frame, row.users), (k as u32, k as u64, 0));
        assert_eq!(
            (row.rate_per_s, row.arrival.as_str()),
            (Some(8.0), "poisson")
        );
        assert!(row.late_ms.is_some_and(|l| l >= 0.0), "{row:?}");
        // Latency counts from the intended time, which is never after the actual send.
        assert!(at(&row.intended_at) <= at(&row.started_at) + Duration::from_millis(1));
    }
    let key = run.manifest["cells"][0]["key"].as_str().expect("key");
    let seed = 42 ^ plan::seed_from(key);
    let expected = arrivals::schedule(seed, 8.0, Process::Poisson, None, Some(10), None);
    let t0 = at(&rows[0].intended_at);
    for (row, offset) in rows.iter().zip(&expected) {
        let measured = at(&row.intended_at).duration_since(t0).expect("ordered");
        let scheduled = *offset - expected[0];
        let error = measured.as_secs_f64() - scheduled.as_secs_f64();
        assert!(
            error.abs() < 0.002,
            "arrival {} off by {error} s",
            row.user_id
        );
    }
}

#[test]
fn excess_over_the_outstanding_bound_becomes_failed_rows() {
    let server = FakeServer::echo(Duration::from_millis(300));
    let results = Results::new();
    let out = results.dir.path().join("open");
    let extra = [
        "--rate",
        "40",
        "--frames",
        "20",
        "--max-outstanding",
        "1",
        "--width",
        "160",
    ];
    summary_of(&client(&grid_args(
        "load",
        &[("slow", &server.url)],
        &out,
        &extra,
    )));
    let rows = run_folder(&out).rows;
    assert_eq!(rows.len(), 20, "every arrival is a row");
    let dropped = rows
        .iter()
        .filter(|r| r.error.contains("outstanding requests were busy"))
        .count();
    let sent = rows.iter().filter(|r| r.ok).count();
    assert_eq!(dropped + sent, 20);
    assert!(sent >= 1 && dropped >= 10, "sent {sent}, dropped {dropped}");
    for row in rows.iter().filter(|r| r.ok) {
        assert!(row.rtt_ms >= 300.0, "{row:?}");
    }
}
