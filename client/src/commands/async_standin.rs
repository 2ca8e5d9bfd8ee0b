//! `slblur-client async-standin`: a stand-in for OpenFaaS's asynchronous path in front of a
//! function URL ([`crate::standin`]), to try `--async` without a cluster and to test how
//! callbacks that are lost, duplicated, late, failed or stray become rows. Not OpenFaaS: on a
//! cluster, use the gateway's `/async-function/NAME`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use reqwest::Url;

use super::Finish;
use crate::cli::values::{parse_duration, parse_url};
use crate::standin::{Faults, Standin, Tally, serve};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The function to front (e.g. http://127.0.0.1:8080/).
    #[arg(long, value_parser = parse_url)]
    pub function: Url,
    /// Where to listen; the first line on stdout is the base URL
    /// (…/async-function/NAME and …/function/NAME).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Calls the queue worker makes at a time (OpenFaaS CE's queue worker makes one).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub workers: u32,
    /// Accepted calls (numbered from 1) whose callback never comes, e.g. 3,7.
    #[arg(long, value_name = "N,…", value_delimiter = ',')]
    pub lose: Vec<u64>,
    /// Accepted calls whose callback comes twice.
    #[arg(long, value_name = "N,…", value_delimiter = ',')]
    pub duplicate: Vec<u64>,
    /// Accepted calls whose callback comes --late-by after the answer.
    #[arg(long, value_name = "N,…", value_delimiter = ',')]
    pub late: Vec<u64>,
    #[arg(long, default_value = "30", value_name = "DURATION", value_parser = parse_duration)]
    pub late_by: Duration,
    /// Accepted calls whose callback reports a failed function (X-Function-Status: 500).
    #[arg(long, value_name = "N,…", value_delimiter = ',')]
    pub fail: Vec<u64>,
    /// Accepted calls that also post stray callbacks first (an unknown id, an oversized body,
    /// a GET), which a receiver must refuse.
    #[arg(long, value_name = "N,…", value_delimiter = ',')]
    pub stray: Vec<u64>,
}

/// Serves until Ctrl-C, then prints what it did.
pub async fn run(args: &Args) -> anyhow::Result<Finish> {
    let set = |v: &[u64]| v.iter().copied().collect::<BTreeSet<u64>>();
    let standin = Standin {
        function: args.function.clone(),
        workers: args.workers as usize,
        faults: Faults {
            lose: set(&args.lose),
            duplicate: set(&args.duplicate),
            late: set(&args.late),
            late_by: args.late_by,
            fail: set(&args.fail),
            stray: set(&args.stray),
        },
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("http://{addr}");
    eprintln!(
        "async-standin (a stand-in for OpenFaaS's asynchronous path, not OpenFaaS): http://{addr}/async-function/NAME queues calls to {}, http://{addr}/function/NAME calls it now; Ctrl-C stops",
        args.function
    );
    let tally = Arc::new(Tally::default());
    tokio::select! {
        served = serve(listener, standin, Arc::clone(&tally)) => served.context("serving")?,
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!(
        "async-standin: {} calls accepted, {} refused, {} callbacks posted, {} synchronous calls",
        tally.accepted.load(Ordering::Relaxed),
        tally.refused.load(Ordering::Relaxed),
        tally.callbacks.load(Ordering::Relaxed),
        tally.sync_calls.load(Ordering::Relaxed)
    );
    Ok(Finish::Completed)
}
