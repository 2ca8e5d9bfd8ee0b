//! `slblur-client model`: the performance model's predictions ([`crate::model::predict`]) as a
//! table, or a JSON list with `--json`.

use std::time::Duration;

use clap::ArgGroup;

use crate::cli::values::{
    RateList, UserList, parse_duration, parse_non_negative_ms, parse_positive_ms, parse_rate_list,
    parse_users,
};
use crate::model::predict::{self, Query};

#[derive(Debug, clap::Args, Clone)]
#[command(group(ArgGroup::new("load").required(true).args(["users", "rate"])))]
pub struct Args {
    /// Closed system: user counts (a comma list, ranges allowed: 1,2,9 or 1-9).
    #[arg(long, value_name = "LIST", value_parser = parse_users)]
    pub users: Option<UserList>,
    /// Closed system: think time between a response and the user's next request.
    #[arg(long, default_value = "0", value_name = "DURATION", value_parser = parse_duration)]
    pub think: Duration,
    /// Open system: arrival rates in requests per second (a comma list: 1,2.5,4).
    #[arg(long, value_name = "LIST", value_parser = parse_rate_list)]
    pub rate: Option<RateList>,
    /// Mean service time of one request at one worker, in milliseconds (the handler's total).
    #[arg(long, value_name = "MS", value_parser = parse_positive_ms)]
    pub service_ms: f64,
    /// Servers at the station: replicas × workers per replica.
    #[arg(long, default_value_t = 1, value_name = "C", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub servers: u32,
    /// Fixed delay outside the function on every request (network, gateway), in milliseconds.
    #[arg(long, default_value_t = 0.0, value_name = "MS", value_parser = parse_non_negative_ms)]
    pub network_ms: f64,
    /// Also find the servers (and replicas) each load needs for this mean response, in ms.
    #[arg(long, value_name = "MS", value_parser = parse_positive_ms)]
    pub target_ms: Option<f64>,
    /// Workers per replica, to turn servers into replicas for --target-ms (SLBLUR_WORKERS).
    #[arg(long, default_value_t = 1, value_name = "W", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub workers_per_replica: u32,
    /// Cold-start delay in milliseconds; with --keep-alive, adds the scale-to-zero cold share.
    #[arg(long, value_name = "MS", value_parser = parse_non_negative_ms, requires = "keep_alive")]
    pub cold_ms: Option<f64>,
    /// Idle time before an instance is removed (scale-to-zero platforms; OpenFaaS CE never does).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "cold_ms")]
    pub keep_alive: Option<Duration>,
    /// Print a JSON list instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    fn query(&self) -> Query {
        Query {
            users: self.users.clone().map(|UserList(u)| u),
            think: self.think,
            rates: self.rate.clone().map(|RateList(r)| r),
            service_ms: self.service_ms,
            servers: self.servers,
            network_ms: self.network_ms,
            target_ms: self.target_ms,
            workers_per_replica: self.workers_per_replica,
            cold: self.cold_ms.zip(self.keep_alive),
        }
    }
}

/// Prints the predictions.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let query = args.query();
    let points = predict::evaluate(&query);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&points)?);
    } else {
        print!("{}", predict::table(&query, &points));
    }
    Ok(())
}
