//! Prometheus metrics at `GET /metrics`, prefixed with the function's name: requests by kind
//! and status, requests in flight, and a histogram per stage (`queue`, the handler's stages,
//! `total`). The function registers its own metrics in the same registry at start-up.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    kind: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    pub in_flight: Gauge,
    stages: Family<StageLabels, Histogram>,
}

fn seconds_histogram() -> Histogram {
    // 5 ms … 41 s: from a fast request to past OpenFaaS's timeouts.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Metrics {
    pub fn new(prefix: &str) -> Metrics {
        let m = Metrics {
            registry: Mutex::new(Registry::with_prefix(prefix.replace('-', "_"))),
            requests: Family::default(),
            in_flight: Gauge::default(),
            stages: Family::new_with_constructor(seconds_histogram),
        };
        m.register(|r| {
            r.register(
                "requests",
                "Function requests by kind and HTTP status",
                m.requests.clone(),
            );
            r.register(
                "in_flight",
                "Requests admitted whose worker or response write is not done yet",
                m.in_flight.clone(),
            );
            r.register(
                "stage_seconds",
                "Time per stage of handled requests (queue, the function's stages, total)",
                m.stages.clone(),
            );
        });
        m
    }

    /// Lets the function add its own metrics.
    pub fn register<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut registry)
    }

    pub fn record_request(&self, kind: &'static str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels { kind, status })
            .inc();
    }

    pub fn record_stages(&self, stages: &[(&'static str, f64)]) {
        for (stage, ms) in stages {
            self.stages
                .get_or_create(&StageLabels { stage })
                .observe(ms / 1000.0);
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.register(|r| prometheus_client::encoding::text::encode(&mut out, r));
        out
    }
}
