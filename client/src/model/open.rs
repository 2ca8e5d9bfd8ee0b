//! Open systems: requests arrive as a Poisson stream of rate λ at c servers with exponential
//! service of mean S (M/M/c). Erlang C gives the chance a request waits and the mean wait;
//! λ ≥ c/S has no steady state (the queue grows without bound) and is reported as unstable.

/// What the model predicts for one arrival rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenPoint {
    /// Offered requests per second.
    pub rate_per_s: f64,
    /// Completed requests per second (= the rate when stable; the capacity c/S when not).
    pub throughput_per_s: f64,
    /// Mean response: delay + wait + service (ms); infinite when unstable.
    pub response_ms: f64,
    /// Probability an arriving request has to wait (Erlang C); 1 when unstable.
    pub wait_probability: f64,
    /// λ·S/c.
    pub utilisation: f64,
    pub stable: bool,
}

/// Erlang C: the probability that an arrival waits at `servers` servers offered `erlangs`
/// (= λ·S) of load. Computed through the Erlang B recursion, which stays finite for large c.
pub fn erlang_c(servers: u32, erlangs: f64) -> f64 {
    let c = servers.max(1);
    let rho = erlangs / f64::from(c);
    if rho >= 1.0 {
        return 1.0;
    }
    let mut erlang_b = 1.0;
    for k in 1..=c {
        erlang_b = erlangs * erlang_b / (f64::from(k) + erlangs * erlang_b);
    }
    erlang_b / (1.0 - rho * (1.0 - erlang_b))
}

/// M/M/c with a fixed extra `delay_ms` (network, gateway) on every request.
pub fn predict(rate_per_s: f64, service_ms: f64, servers: u32, delay_ms: f64) -> OpenPoint {
    let c = f64::from(servers.max(1));
    let erlangs = rate_per_s * service_ms / 1000.0;
    let utilisation = erlangs / c;
    if utilisation >= 1.0 {
        return OpenPoint {
            rate_per_s,
            throughput_per_s: c / service_ms * 1000.0,
            response_ms: f64::INFINITY,
            wait_probability: 1.0,
            utilisation,
            stable: false,
        };
    }
    let wait_probability = erlang_c(servers, erlangs);
    let wait_ms = wait_probability * service_ms / (c * (1.0 - utilisation));
    OpenPoint {
        rate_per_s,
        throughput_per_s: rate_per_s,
        response_ms: delay_ms + service_ms + wait_ms,
        wait_probability,
        utilisation,
        stable: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_c_matches_table_values() {
        // Closed forms: M/M/1 waits with probability ρ; c = 2, a = 1 gives 1/3; c = 3, a = 2
        // gives 4/9.
        assert!((erlang_c(1, 0.7) - 0.7).abs() < 1e-12);
        assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
        assert!((erlang_c(3, 2.0) - 4.0 / 9.0).abs() < 1e-12);
        // Published Erlang C table values (call-centre staffing tables).
        for (c, a, expected) in [(11, 10.0, 0.6821), (10, 8.0, 0.4092), (5, 3.0, 0.2362)] {
            let got = erlang_c(c, a);
            assert!(
                (got - expected).abs() < 5e-4,
                "C({c}, {a}) = {got}, table {expected}"
            );
        }
    }

    #[test]
    fn mm1_response_is_s_over_one_minus_rho() {
        let p = predict(5.0, 100.0, 1, 0.0);
        assert!(p.stable);
        assert!((p.response_ms - 100.0 / (1.0 - 0.5)).abs() < 1e-9, "{p:?}");
        assert_eq!(p.throughput_per_s, 5.0);
    }

    #[test]
    fn light_load_sees_the_service_time_plus_delay() {
        let p = predict(0.001, 150.0, 4, 20.0);
        assert!((p.response_ms - 170.0).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn rates_at_or_past_capacity_are_unstable() {
        let p = predict(20.0, 100.0, 2, 0.0);
        assert!(!p.stable);
        assert!(p.response_ms.is_infinite());
        assert_eq!(p.throughput_per_s, 20.0);
        assert!(predict(19.9, 100.0, 2, 0.0).stable);
    }
}
