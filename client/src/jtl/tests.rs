//! The converter on small JTLs of both plans' shapes, as JMeter 5.6 writes them with
//! jmeter/master.properties, and on broken lines.

use std::fs;

use super::*;

const HEADER: &str = "timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,\
success,failureMessage,bytes,sentBytes,grpThreads,allThreads,URL,Latency,Hostname,IdleTime,\
Connect,\"target\",\"users\",\"think_s\",\"worker\",\"user_id\",\"frame\",\"iteration\",\
\"ml_ms\",\"total_ms\",\"queue_ms\",\"faces\",\"cold\",\"instance\",\"client_csv\",\
\"client_requests\",\"client_ok\",\"client_failed\",\"body_sent\",\"body_received\"";

/// An HTTP-plan line: thread name, user_id, frame, and the extracted timings.
fn http_line(thread: &str, user: u32, frame: u32, ok: bool) -> String {
    if ok {
        format!(
            "1795458879281,37,frame,200,OK,{thread},bin,true,,52392,27270,2,2,http://127.0.0.1:8080/,\
             30,vm,0,3,lab,2,0.5,0,{user},{frame},0,55.120,60.546,0.070,2,false,slblur-1,,,,,27100,52000"
        )
    } else {
        format!(
            "1795458879281,25003,frame,Non HTTP response code: java.net.SocketTimeoutException,\
             \"Non HTTP response code: java.net.SocketTimeoutException,Read timed out\",{thread},\
             text,false,,1234,27270,2,2,http://127.0.0.1:8080/,0,vm,0,3,lab,2,0.5,0,{user},{frame},\
             0,,,,,,,,,,,27100,0"
        )
    }
}

fn write_jtl(dir: &Path, lines: &[String]) -> PathBuf {
    let path = dir.join("results.jtl");
    fs::write(&path, format!("{HEADER}\n{}\n", lines.join("\n"))).expect("write JTL");
    path
}

fn convert_lines(lines: &[String], properties: &RunProperties) -> Converted {
    let dir = tempfile::tempdir().expect("temp dir");
    convert(&write_jtl(dir.path(), lines), properties).expect("JTL converts")
}

fn run_of(id: &str) -> RunProperties {
    RunProperties {
        run_id: Some(id.into()),
        ..RunProperties::default()
    }
}

#[test]
fn http_plan_lines_become_one_row_per_frame() {
    let lines = [
        http_line("users 1-1", 0, 0, true),
        http_line("users 1-2", 1, 0, true),
        http_line("users 1-1", 0, 1, false),
    ];
    let converted = convert_lines(&lines, &run_of("run-1"));
    assert_eq!(converted.bad_lines, vec![]);
    assert_eq!(converted.samples, 3);
    let rows = &converted.rows;
    assert_eq!(rows.len(), 3);
    let ok = &rows[1];
    assert_eq!(
        (
            ok.run_id.as_str(),
            ok.users,
            ok.think_s,
            ok.user_id,
            ok.frame
        ),
        ("run-1", 2, 0.5, 1, 0)
    );
    assert_eq!(ok.started_at, "2026-11-23T18:34:39.281Z");
    assert_eq!(
        (ok.rtt_ms, ok.total_ms, ok.ml_ms),
        (37.0, Some(60.546), Some(55.12))
    );
    assert_eq!(
        (ok.queue_ms, ok.faces, ok.cold),
        (Some(0.07), Some(2), Some(false))
    );
    assert_eq!((ok.status, ok.ok, ok.error.as_str()), (Some(200), true, ""));
    // Bodies only, from the plan's variables; JMeter's own counts include headers.
    assert_eq!((ok.bytes_sent, ok.bytes_received), (27100, 52000));
    assert_eq!(
        (ok.target.as_str(), ok.instance.as_str(), ok.worker),
        ("lab", "slblur-1", 0)
    );
    let failed = &rows[2];
    assert_eq!((failed.status, failed.ok, failed.frame), (None, false, 1));
    assert_eq!(
        failed.error,
        "Non HTTP response code: java.net.SocketTimeoutException,Read timed out"
    );
    assert_eq!(
        (failed.ml_ms, failed.total_ms, failed.faces),
        (None, None, None)
    );
}

#[test]
fn remote_servers_are_workers_and_multiply_users() {
    let properties = RunProperties {
        remote: vec!["127.0.0.1:1099".into(), "127.0.0.1:1100".into()],
        ..run_of("dist")
    };
    // The `worker` variable (0 here) loses to the server's place in the master's list.
    let lines = [
        http_line("127.0.0.1:1100-users 1-2", 1, 0, true),
        http_line("127.0.0.1:1099-users 1-1", 0, 0, true),
    ];
    let rows = convert_lines(&lines, &properties).rows;
    let who: Vec<_> = rows
        .iter()
        .map(|r| (r.worker, r.users, r.user_id))
        .collect();
    // 2 threads per server × 2 servers; user ids numbered across servers.
    assert_eq!(who, vec![(1, 4, 3), (0, 4, 0)]);
}

#[test]
fn identity_falls_back_to_run_properties_and_thread_names() {
    // A JTL written without the identity sample variables (e.g. another plan's settings).
    let header = "timeStamp,elapsed,label,responseCode,threadName,success,bytes,sentBytes,frame";
    let dir = tempfile::tempdir().expect("temp dir");
    let jtl = dir.path().join("bare.jtl");
    fs::write(
        &jtl,
        format!("{header}\n1000,12,frame,200,users 1-3,true,10,20,7\n"),
    )
    .expect("write");
    let properties = RunProperties {
        target: Some("serverful".into()),
        users: Some(3),
        think_s: Some(1.0),
        ..run_of("bare")
    };
    let rows = convert(&jtl, &properties).expect("converts").rows;
    let r = &rows[0];
    assert_eq!(
        (r.target.as_str(), r.users, r.think_s, r.user_id, r.frame),
        ("serverful", 3, 1.0, 2, 7)
    );
    // Without the plan's body sizes, JMeter's own byte counts are kept.
    assert_eq!((r.bytes_sent, r.bytes_received), (20, 10));
    // Without properties nothing says how many users there were: a bad line, not a guess.
    let converted = convert(&jtl, &RunProperties::default()).expect("reads");
    assert!(converted.rows.is_empty());
    assert!(
        converted.bad_lines[0].reason.contains("users unknown"),
        "{:?}",
        converted.bad_lines
    );
}

#[test]
fn client_plan_lines_bring_the_clients_rows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("client/w0-u1-i0.csv");
    let mut sink = CsvSink::open(&csv).expect("client CSV");
    for frame in 0..3 {
        let mut row = Row::pending("client-own-id", 1, 0.5, 0, frame, 0);
        row.started_at = "2026-11-23T18:34:39.281Z".into();
        row.rtt_ms = 70.0;
        row.ml_ms = Some(50.0);
        row.total_ms = Some(60.0);
        row.ok = true;
        row.target = "default".into();
        sink.write(&row).expect("row");
    }
    drop(sink);
    let client_line = "1795458879281,2500,video,0,,users 1-2,text,true,,500,0,2,2,,0,vm,0,0,\
        lab,2,0.5,0,1,,0,,,,,,,client/w0-u1-i0.csv,3,3,0,,"
        .to_string();
    let missing = "1795458879281,10,video,1,slblur-client exited with 1: error: no such video,\
        users 1-1,text,false,slblur-client exited with 1: error: no such video,10,0,2,2,,0,vm,0,\
        0,lab,2,0.5,0,0,,0,,,,,,,client/w0-u0-i0.csv,,,,,"
        .to_string();
    let jtl = write_jtl(dir.path(), &[client_line, missing]);
    let converted = convert(&jtl, &run_of("jm")).expect("converts");
    assert_eq!(converted.samples, 1);
    let rows = &converted.rows;
    assert_eq!(rows.len(), 3);
    for (frame, r) in rows.iter().enumerate() {
        assert_eq!(
            (
                r.run_id.as_str(),
                r.users,
                r.user_id,
                r.frame,
                r.target.as_str()
            ),
            ("jm", 2, 1, frame as u64, "lab")
        );
        assert_eq!(
            (r.ml_ms, r.total_ms, r.rtt_ms),
            (Some(50.0), Some(60.0), 70.0)
        );
    }
    // The client that crashed before writing: its line is reported with the client's reason.
    let bad = &converted.bad_lines;
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].line, 3);
    assert!(bad[0].reason.contains("w0-u0-i0.csv"), "{bad:?}");
    assert!(bad[0].reason.contains("no such video"), "{bad:?}");
}

#[test]
fn bad_lines_are_reported_with_their_numbers_and_skipped() {
    let good = http_line("users 1-1", 0, 0, true);
    let torn = good[..good.len() / 2].to_string();
    let lines = [
        good.clone(),
        torn,
        good.replacen("1795458879281", "yesterday", 1),
        good.replacen(",bin,true,", ",bin,maybe,", 1),
        good.replacen(",55.120,", ",fast,", 1),
        "\"unterminated,quote".to_string(),
    ];
    let converted = convert_lines(&lines, &run_of("r"));
    assert_eq!(converted.rows.len(), 1);
    let got: Vec<(u64, &str)> = converted
        .bad_lines
        .iter()
        .map(|b| (b.line, b.reason.as_str()))
        .collect();
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(got[0].0, 3);
    assert!(
        got[0].1.contains("fields where the header has 37"),
        "{got:?}"
    );
    assert_eq!(got[1], (4, "timeStamp 'yesterday' is not a whole number"));
    assert_eq!(got[2], (5, "success 'maybe' is not true or false"));
    assert_eq!(got[3], (6, "ml_ms 'fast' is not valid"));
    assert_eq!(got[4].0, 7);
}

#[test]
fn files_that_are_not_csv_jtls_are_refused_whole() {
    let dir = tempfile::tempdir().expect("temp dir");
    let xml = dir.path().join("results.jtl");
    fs::write(
        &xml,
        "<?xml version=\"1.0\"?>\n<testResults version=\"1.2\">\n",
    )
    .expect("write");
    let err = convert(&xml, &RunProperties::default()).expect_err("XML JTL");
    assert!(err.to_string().contains("no column timeStamp"), "{err}");
    let err =
        convert(&dir.path().join("none.jtl"), &RunProperties::default()).expect_err("missing file");
    assert!(err.to_string().contains("none.jtl"), "{err}");
}

#[test]
fn import_appends_to_results_csv_and_reads_properties_beside_the_jtl() {
    let dir = tempfile::tempdir().expect("temp dir");
    let jtl = write_jtl(dir.path(), &[http_line("users 1-1", 0, 0, true)]);
    fs::write(dir.path().join("run.properties"), "run_id=beside\n").expect("properties");
    let out = dir.path().join("out");
    import(&jtl, None, &out).expect("first import");
    import(&jtl, None, &out).expect("second import appends");
    let rows = record::read_rows(&dir.path().join("out/results.csv")).expect("dataset");
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.run_id == "beside"));
}

#[test]
fn thread_names_number_users_from_zero() {
    assert_eq!(thread_index("users 1-1"), Some(0));
    assert_eq!(thread_index("127.0.0.1:1099-users 1-12"), Some(11));
    assert_eq!(thread_index("users"), None);
    assert_eq!(thread_index("users 1-0"), None);
}
