//! The command line: [`Cli`] and its [`Command`]s, whose options live with each subcommand in
//! [`crate::commands`], and the [`values`] parsers they use. Nothing here runs anything.

pub mod values;

use clap::{Parser, Subcommand};

use crate::commands;

#[derive(Debug, Parser)]
#[command(
    name = "slblur-client",
    version,
    about = "Load-test client for the slblur face-blur function",
    long_about = "Load-test client for the slblur face-blur function.\n\n\
        It decodes a video once, sends its frames to the function as HTTP requests and records \
        one CSV row per request (round trip, handler and ML time, faces, status, errors). \
        See client/SCHEMA.md for the CSV columns.",
    after_help = "Examples:\n  \
        slblur-client frames --video samples/astronaut.mp4 --out-dir /tmp/frames\n  \
        slblur-client run --video samples/astronaut.mp4 --think 1 --out results.csv\n  \
        slblur-client run --video samples/astronaut.mp4 --save-video blurred.mp4\n  \
        slblur-client leaks blurred.mp4 samples/astronaut.mp4\n  \
        slblur-client sweep --video samples/astronaut.mp4 --users 1,2,4 --think 0,1,5 --out results/grid\n  \
        slblur-client sweep --video samples/astronaut.mp4 --rate 2,5 --target a=http://h:8080/ --target b=http://h:9000/"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode a video and write its frames as numbered JPEG or PNG files.
    Frames(commands::frames::Args),
    /// Send a video's frames to the function as one user, one request per frame.
    Run(commands::run::Args),
    /// Run one load cell (N users with think time Z, or a request rate) with goose.
    Load(commands::load::Args),
    /// Run every target × users × think (or × rate) cell, one after another, with goose.
    Sweep(commands::load::Args),
    /// Count the frames of an anonymised video that leave a face unmasked, with their numbers.
    Leaks(commands::leaks::Args),
    /// A stand-in for OpenFaaS's asynchronous path (202, queue, callbacks) in front of a
    /// function, to try --async without a cluster; it can inject lost, duplicate, late and
    /// failed callbacks.
    AsyncStandin(commands::async_standin::Args),
    /// Combine the run folders of distributed workers into one dataset and summary.
    Merge(commands::merge::Args),
    /// Convert a JMeter results file (JTL) from jmeter/*.jmx into the results dataset.
    ImportJtl(commands::import_jtl::Args),
    /// Turn results into summary.csv, summary.md, PNG plots and index.html, with the model's fit.
    Report(commands::report::Args),
    /// Predict throughput and response time for users (closed) or request rates (open).
    Model(commands::model::Args),
}

impl Command {
    /// The subcommand's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Frames(_) => "frames",
            Command::Run(_) => "run",
            Command::Load(_) => "load",
            Command::Sweep(_) => "sweep",
            Command::Leaks(_) => "leaks",
            Command::AsyncStandin(_) => "async-standin",
            Command::Merge(_) => "merge",
            Command::ImportJtl(_) => "import-jtl",
            Command::Report(_) => "report",
            Command::Model(_) => "model",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use slblur_protocol::Wire;

    use super::*;
    use crate::cli::values::DEFAULT_URL;
    use crate::commands::DEFAULT_TARGET;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn command_names_are_the_parser_s() {
        use clap::CommandFactory;
        let cli = Cli::command();
        let names: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
        let video = ["--video", "v.mp4"];
        for name in &names {
            let args: Vec<&str> = match *name {
                "frames" => vec!["--video", "v.mp4", "--out-dir", "d"],
                "merge" => vec!["d", "--out", "o"],
                "leaks" => vec!["out.mp4", "in.mp4"],
                "async-standin" => vec!["--function", "http://127.0.0.1:1/"],
                "import-jtl" => vec!["f.jtl", "--out", "o"],
                "report" => vec!["d"],
                "model" => vec!["--users", "1", "--service-ms", "1"],
                _ => video.to_vec(),
            };
            let parsed = Cli::try_parse_from(
                ["slblur-client", name]
                    .into_iter()
                    .chain(args.iter().copied()),
            )
            .expect("test input");
            assert_eq!(parsed.command.name(), *name);
        }
    }

    #[test]
    fn run_defaults_match_the_original_client() {
        let cli =
            Cli::try_parse_from(["slblur-client", "run", "--video", "v.mp4"]).expect("test input");
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.think, Duration::ZERO);
        assert_eq!(run.send.timeout, Duration::from_secs(25));
        assert_eq!(run.send.wire, Wire::Binary);
        assert_eq!(run.send.target_list()[0].url.as_str(), DEFAULT_URL);
        assert_eq!(run.send.target_list()[0].name, DEFAULT_TARGET);
    }

    #[test]
    fn sweep_axes_exclude_each_other() {
        let parse = |args: &[&str]| {
            let mut all = vec!["slblur-client", "sweep", "--video", "v.mp4"];
            all.extend_from_slice(args);
            Cli::try_parse_from(all)
        };
        assert!(parse(&["--users", "1,2", "--think", "0,1"]).is_ok());
        assert!(parse(&["--rate", "2,4"]).is_ok());
        assert!(parse(&["--rate", "2", "--users", "1"]).is_err());
        assert!(parse(&["--users", "0"]).is_err());
        assert!(parse(&["--think", "-1"]).is_err());
        assert!(parse(&["--target", "=http://x/"]).is_err());
        assert!(parse(&["--url", "http://x/", "--target", "a=http://y/"]).is_err());
        assert!(parse(&["--ramp-up", "4s", "--ramp-rate", "1"]).is_err());
        assert!(parse(&["--resume"]).is_err(), "--resume needs --out");
    }
}
