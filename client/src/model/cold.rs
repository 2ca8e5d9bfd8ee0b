//! Cold starts: how many requests pay the start-up delay of a fresh instance, and what that
//! costs on the mean response.
//!
//! In the spirit of Mahmoudi & Khazaei's semi-Markov model ("Performance Modeling of Serverless
//! Computing Platforms", IEEE TCC 2020), reduced to the low-concurrency case they highlight: an
//! instance that stays idle longer than the keep-alive (expiration) time is removed, so with
//! Poisson arrivals of rate λ a request is cold when the gap since the previous one exceeds the
//! keep-alive: P(cold) = e^(−λ·T).
//!
//! OpenFaaS CE behaves differently, and [`Platform::OpenFaasCe`] models what it does: replicas
//! never scale to zero (scale-to-zero is a Pro feature) and stay between 1 and 5; the only
//! autoscaler is one Alertmanager rule (> 5 requests/s over 10 s, held 5 s) that adds replicas
//! and drops back to the minimum when it resolves. So in steady state no request is cold; the
//! cold requests are each new replica's first one: the deployed replicas at the start of a run,
//! plus the replicas added when the rate crosses the alert threshold.

/// Which scaling behaviour to assume.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Platform {
    /// Instances are removed after `keep_alive_s` idle and created on demand (scale to zero).
    ScaleToZero { keep_alive_s: f64 },
    /// OpenFaaS CE: at least `min_replicas` always run; a run of `requests` requests sees one
    /// cold request per replica it starts with, plus `scale_ups` replicas added by the alert.
    OpenFaasCe {
        min_replicas: u32,
        scale_ups: u32,
        requests: u64,
    },
}

/// Expected share of cold requests at `rate_per_s` (0..=1).
pub fn cold_share(platform: Platform, rate_per_s: f64) -> f64 {
    match platform {
        Platform::ScaleToZero { keep_alive_s } => (-rate_per_s * keep_alive_s).exp(),
        Platform::OpenFaasCe {
            min_replicas,
            scale_ups,
            requests,
        } => {
            if requests == 0 {
                return 0.0;
            }
            ((u64::from(min_replicas) + u64::from(scale_ups)) as f64 / requests as f64).min(1.0)
        }
    }
}

/// Mean response when a share `cold_share` of requests pays `cold_delay_ms` on top of the warm
/// mean.
pub fn mean_with_cold(warm_ms: f64, cold_share: f64, cold_delay_ms: f64) -> f64 {
    warm_ms + cold_share * cold_delay_ms
}

/// OpenFaaS CE's scaling alert: more than 5 requests/s, sustained.
pub const CE_ALERT_RATE_PER_S: f64 = 5.0;

/// Replica bounds of OpenFaaS CE.
pub const CE_MAX_REPLICAS: u32 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_to_zero_cold_share_falls_with_rate_and_keep_alive() {
        let p = |t| Platform::ScaleToZero { keep_alive_s: t };
        assert!((cold_share(p(600.0), 0.0) - 1.0).abs() < 1e-12);
        assert!((cold_share(p(10.0), 0.1) - (-1.0f64).exp()).abs() < 1e-12);
        assert!(cold_share(p(600.0), 1.0) < 1e-200);
        assert!(cold_share(p(60.0), 0.01) > cold_share(p(60.0), 0.1));
    }

    #[test]
    fn openfaas_ce_only_pays_for_new_replicas() {
        let ce = Platform::OpenFaasCe {
            min_replicas: 1,
            scale_ups: 0,
            requests: 200,
        };
        assert_eq!(cold_share(ce, 2.0), 0.005);
        // The rate does not matter: CE never removes the last replica.
        assert_eq!(cold_share(ce, 0.0001), 0.005);
        let none = Platform::OpenFaasCe {
            min_replicas: 1,
            scale_ups: 4,
            requests: 0,
        };
        assert_eq!(cold_share(none, 1.0), 0.0);
    }

    #[test]
    fn cold_cost_adds_to_the_mean() {
        assert_eq!(mean_with_cold(100.0, 0.25, 2000.0), 600.0);
        assert_eq!(mean_with_cold(100.0, 0.0, 2000.0), 100.0);
    }
}
