//! Prometheus metrics served at `GET /metrics`: requests by wire format and status, requests in
//! flight, faces found, and histograms of queue, ML and handler-total time.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::pipeline::Timings;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub wire: &'static str,
    pub status: u16,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    pub in_flight: Gauge,
    faces: Counter,
    queue: Histogram,
    ml: Histogram,
    total: Histogram,
}

fn seconds_histogram() -> Histogram {
    // 5 ms … 41 s: from a warm 360p frame to past OpenFaaS's timeouts.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Metrics {
            registry: Registry::with_prefix("slblur"),
            requests: Family::default(),
            in_flight: Gauge::default(),
            faces: Counter::default(),
            queue: seconds_histogram(),
            ml: seconds_histogram(),
            total: seconds_histogram(),
        };
        let r = &mut m.registry;
        r.register(
            "requests",
            "Function requests by wire format and HTTP status",
            m.requests.clone(),
        );
        r.register(
            "in_flight",
            "Requests admitted and not yet answered",
            m.in_flight.clone(),
        );
        r.register("faces", "Faces found", m.faces.clone());
        r.register(
            "queue_seconds",
            "Time waiting for a worker",
            m.queue.clone(),
        );
        r.register("ml_seconds", "Detection time per frame", m.ml.clone());
        r.register(
            "total_seconds",
            "Handler total time per frame",
            m.total.clone(),
        );
        m
    }
}

impl Metrics {
    pub fn record_request(&self, wire: &'static str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels { wire, status })
            .inc();
    }

    pub fn record_frame(&self, faces: usize, t: &Timings) {
        self.faces.inc_by(faces as u64);
        self.queue.observe(t.queue / 1000.0);
        self.ml.observe(t.ml / 1000.0);
        self.total.observe(t.total / 1000.0);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
