//! `run` against the real function in each wire format: one correct row per frame.

use crate::support::{
    Results, assert_real_ok_row, client, rows, run_args, start_function, summary_of, text,
};

fn run_wire(wire: &str, expect_faces: bool, expect_cold: bool) {
    let function = start_function();
    let results = Results::new();
    let extra = ["--wire", wire, "--frames", "3"];
    let out = client(&run_args(&function.url, &results.csv, &extra));
    let summary = summary_of(&out);
    let rows = rows(&results.csv);
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (i, row) in rows.iter().enumerate() {
        assert_real_ok_row(row, expect_faces);
        assert_eq!(
            (
                row.users,
                row.user_id,
                row.frame,
                row.iteration,
                row.think_s
            ),
            (1, 0, i as u64, 0, 0.0)
        );
        assert_eq!(row.run_id, rows[0].run_id);
        assert_eq!(row.cold.is_some(), expect_cold, "{row:?}");
        if !expect_faces {
            assert_eq!(row.faces, None, "seed responses carry no face count");
        }
    }
    assert_eq!(summary["run_id"], rows[0].run_id.as_str());
    assert_eq!(summary["wire"], wire);
    let cell = &summary["cells"][0];
    assert_eq!(
        (cell["requests"].as_u64(), cell["ok"].as_u64()),
        (Some(3), Some(3))
    );
    let median = |stat: &str| cell[stat]["median"].as_f64().expect("median");
    assert!(median("rtt_ms") >= median("ml_ms"));
    // The table comes before the JSON line.
    let table = text(&out.stdout);
    for word in ["users", "rtt", "total", "ml", "100.0%"] {
        assert!(table.contains(word), "{word} missing from:\n{table}");
    }
}

#[test]
fn binary_rows() {
    run_wire("binary", true, true);
}

#[test]
fn json_rows() {
    run_wire("json", true, true);
}

#[test]
fn seed_rows() {
    run_wire("seed", false, false);
}

#[test]
fn png_over_binary_and_appending_to_one_file() {
    let function = start_function();
    let results = Results::new();
    for format in ["png", "jpeg"] {
        let extra = ["--format", format, "--frames", "2"];
        summary_of(&client(&run_args(&function.url, &results.csv, &extra)));
    }
    let rows = rows(&results.csv);
    assert_eq!(rows.len(), 4);
    rows.iter().for_each(|r| assert_real_ok_row(r, true));
    assert_ne!(
        rows[0].run_id, rows[2].run_id,
        "each invocation has its own run id"
    );
    assert!(
        rows[0].bytes_sent > rows[2].bytes_sent,
        "PNG frames are bigger than JPEG q90"
    );
}
