//! `slblur-client report` on the committed sample dataset (`samples/report`: two targets,
//! closed and open cells, cold requests, refused requests): every file is written, the
//! summary agrees with a computation done here from the raw rows, the PNGs are real pictures,
//! the HTML links only files beside it, and bad input fails with its file and line.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use slblur_client::record::{HEADER, LEGACY_COLUMNS};
use slblur_client::report::{self, ReportError};

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/report")
}

fn report_into(out: &Path, inputs: Vec<PathBuf>) -> Result<report::ReportOutput, ReportError> {
    report::write(&inputs, &Default::default(), out)
}

fn sample_report() -> (tempfile::TempDir, report::ReportOutput) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = report_into(dir.path(), vec![sample_dir()]).expect("report on the sample");
    (dir, out)
}

#[test]
fn every_file_is_written() {
    let (dir, out) = sample_report();
    for name in [
        "index.html",
        "summary.csv",
        "summary.md",
        "rtt_vs_users.png",
        "throughput_vs_users.png",
        "success_vs_users.png",
        "throughput_vs_rate.png",
        "grid_users_1.png",
        "grid_users_2.png",
        "grid_users_4.png",
        "rtt_cdf.png",
        "rtt_breakdown.png",
        "cold_vs_warm.png",
        "requests_per_instance.png",
    ] {
        let path = dir.path().join(name);
        assert!(path.is_file(), "{name} missing");
        assert!(out.files.contains(&path), "{name} not reported");
    }
    assert_eq!(out.index, dir.path().join("index.html"));
    assert!(
        out.describe().trim_end().ends_with("index.html"),
        "{}",
        out.describe()
    );
    // Two targets, 3 users × 3 think times closed plus 2 rates open each.
    assert_eq!(out.cells, 22);
    let fitted: Vec<&str> = out.fits.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(fitted, ["serverful", "serverless"]);
    assert!(
        out.fits
            .iter()
            .all(|(_, f)| f.servers == 2 && f.servers_source == "run.json")
    );
}

/// One raw row, parsed here without the report's code.
struct Raw {
    key: (String, u32, String, String),
    ok: bool,
    cold: bool,
    rtt: f64,
    start_ms: f64,
}

fn epoch_ms(text: &str) -> f64 {
    let t = humantime::parse_rfc3339(text).expect("sample timestamps are RFC 3339");
    t.duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
        * 1000.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

#[test]
fn summary_matches_an_independent_computation() {
    let (dir, _) = sample_report();
    let mut raw = csv::Reader::from_path(sample_dir().join("results.csv")).expect("sample");
    let headers = raw.headers().expect("header").clone();
    let col = |name: &str| headers.iter().position(|h| h == name).expect("column");
    let mut cells: BTreeMap<(String, u32, String, String), Vec<Raw>> = BTreeMap::new();
    for record in raw.records() {
        let r = record.expect("sample row");
        let start = if r[col("intended_at")].is_empty() {
            col("started_at")
        } else {
            col("intended_at")
        };
        let row = Raw {
            key: (
                r[col("target")].to_string(),
                r[col("users")].parse().expect("users"),
                format!("{}", r[col("think_s")].parse::<f64>().expect("think")),
                r[col("rate_per_s")].to_string(),
            ),
            ok: &r[col("ok")] == "true",
            cold: &r[col("cold")] == "true",
            rtt: r[col("rtt_ms")].parse().expect("rtt"),
            start_ms: epoch_ms(&r[start]),
        };
        cells.entry(row.key.clone()).or_default().push(row);
    }
    let mut summary = csv::Reader::from_path(dir.path().join("summary.csv")).expect("summary");
    let sh = summary.headers().expect("header").clone();
    let mut checked = 0;
    let mut failures_seen = 0;
    for record in summary.records() {
        let s = record.expect("summary row");
        let get = |name: &str| s[sh.iter().position(|h| h == name).expect(name)].to_string();
        let num = |name: &str| get(name).parse::<f64>().expect(name);
        let key = (
            get("target"),
            get("users").parse().expect("users"),
            format!("{}", num("think_s")),
            get("rate_per_s"),
        );
        let rows = cells
            .get(&key)
            .unwrap_or_else(|| panic!("summary cell {key:?} not in the data"));
        let ok: Vec<&Raw> = rows.iter().filter(|r| r.ok).collect();
        let mut rtt: Vec<f64> = ok.iter().map(|r| r.rtt).collect();
        rtt.sort_by(f64::total_cmp);
        let close = |a: f64, b: f64, what: &str| {
            assert!(
                (a - b).abs() <= 2e-3 * b.abs().max(1.0),
                "{key:?} {what}: {a} vs {b}"
            )
        };
        assert_eq!(num("requests") as usize, rows.len(), "{key:?}");
        assert_eq!(num("ok") as usize, ok.len(), "{key:?}");
        assert_eq!(
            num("cold") as usize,
            rows.iter().filter(|r| r.cold).count(),
            "{key:?}"
        );
        close(
            num("success_rate"),
            ok.len() as f64 / rows.len() as f64,
            "success rate",
        );
        let first = rows
            .iter()
            .map(|r| r.start_ms)
            .fold(f64::INFINITY, f64::min);
        let last = rows.iter().map(|r| r.start_ms + r.rtt).fold(0.0, f64::max);
        close(
            num("throughput_rps"),
            ok.len() as f64 / ((last - first) / 1000.0),
            "throughput",
        );
        failures_seen += rows.len() - ok.len();
        let mean_ok = |rows: &[Raw]| {
            let ok: Vec<f64> = rows.iter().filter(|r| r.ok).map(|r| r.rtt).collect();
            ok.iter().sum::<f64>() / ok.len() as f64
        };
        if key.0 == "serverless" {
            let base = cells.get(&("serverful".to_string(), key.1, key.2.clone(), key.3.clone()));
            let base = base.expect("both targets ran every cell");
            assert_eq!(get("ratio_baseline"), "serverful");
            close(
                num("rtt_mean_ratio"),
                mean_ok(rows) / mean_ok(base),
                "ratio",
            );
        }
        if !rtt.is_empty() {
            close(num("rtt_mean_ms"), mean_ok(rows), "mean");
            close(num("rtt_median_ms"), percentile(&rtt, 0.5), "median");
            close(num("rtt_p95_ms"), percentile(&rtt, 0.95), "p95");
            close(num("rtt_p99_ms"), percentile(&rtt, 0.99), "p99");
        }
        checked += 1;
    }
    assert_eq!(checked, cells.len(), "one summary row per cell");
    assert!(failures_seen > 0, "the sample has failed requests");
}

/// Width, height and pixel spread of a PNG.
fn picture(path: &Path) -> (u32, u32, f64, f64) {
    let img = image::open(path).expect("PNG decodes").to_rgb8();
    let luma: Vec<f64> = img
        .pixels()
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect();
    let mean = luma.iter().sum::<f64>() / luma.len() as f64;
    let variance = luma.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / luma.len() as f64;
    let inked = luma.iter().filter(|v| **v < 200.0).count() as f64 / luma.len() as f64;
    (img.width(), img.height(), variance, inked)
}

#[test]
fn plots_are_pictures_of_the_expected_size() {
    let (dir, out) = sample_report();
    let expected = [
        // Two target panels side by side.
        ("rtt_vs_users.png", 1040, 400),
        ("throughput_vs_users.png", 1040, 400),
        ("rtt_cdf.png", 1120, 420),
        // Two targets × three think times, three metric rows under a title.
        ("grid_users_4.png", 1980, 730),
    ];
    for (name, w, h) in expected {
        let (width, height, _, _) = picture(&dir.path().join(name));
        assert_eq!((width, height), (w, h), "{name}");
    }
    for png in out
        .files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
    {
        let (_, _, variance, inked) = picture(png);
        assert!(
            variance > 100.0,
            "{} looks blank (variance {variance})",
            png.display()
        );
        assert!(
            inked > 0.005,
            "{} has almost nothing drawn ({inked})",
            png.display()
        );
    }
}

#[test]
fn html_references_only_files_beside_it() {
    let (dir, out) = sample_report();
    let html = fs::read_to_string(&out.index).expect("index");
    let lower = html.to_lowercase();
    for banned in ["<script", "http:", "https:", "@import", "url(", "<link"] {
        assert!(!lower.contains(banned), "index.html contains {banned}");
    }
    let mut links = 0;
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let target = part.split('"').next().expect("closing quote");
            assert!(
                !target.starts_with('/') && !target.contains(".."),
                "{target} is not local"
            );
            assert!(
                dir.path().join(target).is_file(),
                "{target} is not in the report folder"
            );
            links += 1;
        }
    }
    // Every PNG plus summary.csv and summary.md.
    let pngs = out
        .files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
        .count();
    assert_eq!(links, pngs + 2);
}

#[test]
fn committed_sample_summary_is_current() {
    // notebooks/ reads samples/report/summary.csv: it must be what the report makes today.
    let (dir, _) = sample_report();
    let fresh = fs::read_to_string(dir.path().join("summary.csv")).expect("fresh summary");
    let committed =
        fs::read_to_string(sample_dir().join("summary.csv")).expect("committed summary");
    assert!(
        fresh == committed,
        "samples/report/summary.csv is stale: run slblur-client report samples/report --out samples/report/report \
         and copy its summary.csv over"
    );
}

#[test]
fn foreign_and_garbled_files_name_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let foreign = dir.path().join("foreign.csv");
    fs::write(&foreign, "label,elapsed\nx,3\n").expect("write");
    let err =
        report_into(&dir.path().join("out"), vec![foreign.clone()]).expect_err("foreign file");
    let text = err.to_string();
    assert!(
        text.contains("foreign.csv")
            && text.contains("line 1")
            && text.contains("not a slblur results CSV"),
        "{text}"
    );

    let garbled = dir.path().join("garbled.csv");
    let good = "r,1,0,0,0,0,2025-01-01T00:00:00.000Z,10,8,5,1,200,10,10,false,true,,a,,,0,,,0,0,,,sync,,,,,,";
    let bad = "r,1,0,0,1,0,2025-01-01T00:00:01.000Z,fast,8,5,1,200,10,10,false,true,,a,,,0,,,0,0,,,sync,,,,,,";
    fs::write(&garbled, format!("{}\n{good}\n{bad}\n", HEADER.join(","))).expect("write");
    let text = report_into(&dir.path().join("out"), vec![garbled])
        .expect_err("garbled")
        .to_string();
    assert!(text.contains("garbled.csv: line 3:"), "{text}");

    let bad_time = dir.path().join("time.csv");
    fs::write(
        &bad_time,
        format!(
            "{}\n{}\n",
            HEADER.join(","),
            good.replace("2025-01-01T00:00:00.000Z", "yesterday")
        ),
    )
    .expect("write");
    let text = report_into(&dir.path().join("out"), vec![bad_time])
        .expect_err("bad time")
        .to_string();
    assert!(
        text.contains("time.csv: line 2:") && text.contains("yesterday"),
        "{text}"
    );

    let empty = dir.path().join("empty-folder");
    fs::create_dir(&empty).expect("mkdir");
    let text = report_into(&dir.path().join("out"), vec![empty])
        .expect_err("empty folder")
        .to_string();
    assert!(
        text.contains("empty-folder") && text.contains("holds no results CSV"),
        "{text}"
    );

    let missing = report_into(&dir.path().join("out"), vec![dir.path().join("nope.csv")])
        .expect_err("missing");
    assert!(missing.to_string().contains("nope.csv"), "{missing}");
}

#[test]
fn legacy_files_and_torn_rows_are_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let legacy = dir.path().join("legacy.csv");
    let mut text = HEADER[..LEGACY_COLUMNS[0]].join(",") + "\n";
    for (i, rtt) in [120.0, 130.0, 125.0, 140.0].iter().enumerate() {
        text += &format!(
            "r,1,0,0,{i},0,2025-01-01T00:00:0{i}.000Z,{rtt},100,60,1,200,10,10,false,true,\n"
        );
    }
    // A row cut short by a killed client, then the next run's rows.
    text += "r,1,0,0,4,0,2025-01-01T00:00:04.000Z,12\n";
    text += "r,2,0,0,0,0,2025-01-01T00:01:00.000Z,300,200,60,1,200,10,10,false,true,\n";
    fs::write(&legacy, text).expect("write");
    let out = report_into(&dir.path().join("out"), vec![legacy]).expect("legacy file reports");
    assert_eq!((out.rows, out.cells), (5, 2));
    assert_eq!(out.warnings.len(), 1);
    assert!(out.warnings[0].contains("line 6"), "{:?}", out.warnings);
    let (target, fit) = &out.fits[0];
    assert_eq!(target, "default");
    // S = mean handler total, D = mean (rtt − total), c = 1 without instances or run.json.
    assert_eq!(
        (fit.service_ms, fit.delay_ms, fit.servers),
        (100.0, 28.75, 1)
    );
    let summary = fs::read_to_string(dir.path().join("out/summary.csv")).expect("summary");
    assert!(
        summary
            .lines()
            .nth(1)
            .expect("row")
            .starts_with("default,sync,1,0.0,,,0,4,4,0,1.0,"),
        "{summary}"
    );
}
