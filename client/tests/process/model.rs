//! `slblur-client model` end to end: the binary's JSON answers, its table, and the errors
//! clap gives for bad values. The formulas themselves are unit-tested in `model::*`.

use std::process::{Command, Output};

fn model(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slblur-client"))
        .arg("model")
        .args(args)
        .output()
        .expect("slblur-client runs")
}

fn json(args: &[&str]) -> Vec<serde_json::Value> {
    let out = model(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON list")
}

#[test]
fn closed_json_lists_users_throughput_and_response() {
    let points = json(&[
        "--users",
        "1,2,9",
        "--think",
        "1",
        "--service-ms",
        "100",
        "--servers",
        "2",
        "--json",
    ]);
    assert_eq!(points.len(), 3);
    let users: Vec<u64> = points
        .iter()
        .map(|p| p["users"].as_u64().expect("users"))
        .collect();
    assert_eq!(users, [1, 2, 9]);
    // One user: R = S, X = 1 / (S + Z).
    assert!((points[0]["response_ms"].as_f64().expect("R") - 100.0).abs() < 1e-9);
    assert!((points[0]["throughput_per_s"].as_f64().expect("X") - 1.0 / 1.1).abs() < 1e-9);
    // Two users on two servers do not wait.
    assert!((points[1]["response_ms"].as_f64().expect("R") - 100.0).abs() < 1e-9);
    // Nine users: below both bounds, min(c/S, N/(S+Z)) = min(20, 8.18).
    let x9 = points[2]["throughput_per_s"].as_f64().expect("X");
    assert!(x9 < 9.0 / 1.1 && x9 > 7.0, "{x9}");
    assert!(points[0].get("rate").is_none());
}

#[test]
fn open_json_marks_unstable_rates() {
    let points = json(&["--rate", "5,20", "--service-ms", "100", "--json"]);
    assert_eq!(points[0]["rate"].as_f64(), Some(5.0));
    // M/M/1 at ρ = 0.5: R = S / (1 − ρ).
    assert!((points[0]["response_ms"].as_f64().expect("R") - 200.0).abs() < 1e-9);
    assert!(
        points[1]["response_ms"].is_null(),
        "λ ≥ c/S has no steady state"
    );
}

#[test]
fn target_response_gives_servers_and_replicas() {
    let points = json(&[
        "--rate",
        "30",
        "--service-ms",
        "100",
        "--target-ms",
        "150",
        "--workers-per-replica",
        "2",
        "--json",
    ]);
    let servers = points[0]["servers_for_target"].as_u64().expect("reachable");
    // At least λ·S = 3 busy servers are needed for stability; the answer meets the target and
    // one server fewer does not.
    assert!(servers >= 4, "{servers}");
    let check = |c: u64| {
        json(&[
            "--rate",
            "30",
            "--service-ms",
            "100",
            "--servers",
            &c.to_string(),
            "--json",
        ])[0]["response_ms"]
            .as_f64()
            .is_some_and(|r| r <= 150.0)
    };
    assert!(check(servers) && !check(servers - 1));
    assert_eq!(
        points[0]["replicas_for_target"].as_u64(),
        Some(servers.div_ceil(2))
    );
    let unreachable = json(&[
        "--users",
        "3",
        "--service-ms",
        "100",
        "--target-ms",
        "50",
        "--json",
    ]);
    assert!(unreachable[0]["servers_for_target"].is_null());
}

#[test]
fn table_and_bad_values() {
    let out = model(&[
        "--users",
        "1-3",
        "--service-ms",
        "150",
        "--cold-ms",
        "2000",
        "--keep-alive",
        "10m",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("3 users") && text.contains("cold share"),
        "{text}"
    );
    for bad in [
        vec!["--users", "2", "--service-ms", "0"],
        vec!["--rate", "fast", "--service-ms", "10"],
        vec!["--service-ms", "10"],
        vec!["--users", "2", "--service-ms", "10", "--servers", "0"],
        vec!["--users", "2", "--service-ms", "10", "--cold-ms", "5"],
    ] {
        let out = model(&bad);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad:?} should be a usage error"
        );
        assert!(!out.stderr.is_empty());
    }
}
