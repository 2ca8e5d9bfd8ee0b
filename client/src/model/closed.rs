//! Closed systems: N users who each think for Z, then wait for one request at a station of c
//! identical servers (the function's workers) with mean service time S.
//!
//! Solved by exact load-dependent Mean Value Analysis (Reiser & Lavenberg): the station's
//! service rate with j requests present is min(j, c)/S, so it tracks the marginal probability of
//! each queue length instead of assuming one server. A fixed network delay D (client, network,
//! gateway) is a delay station: it adds to the think time seen by the station and to the round
//! trip the user measures.

/// The parameters of a closed prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClosedParams {
    /// Mean service time of one request at one server (ms).
    pub service_ms: f64,
    /// Servers at the station: replicas × workers per replica.
    pub servers: u32,
    /// Think time between a response and the next request (ms).
    pub think_ms: f64,
    /// Delay outside the station on every request: network and gateway (ms).
    pub delay_ms: f64,
}

/// What the model predicts for one user count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClosedPoint {
    pub users: u32,
    /// Completed requests per second.
    pub throughput_per_s: f64,
    /// Mean round trip a user sees: delay + waiting + service (ms).
    pub response_ms: f64,
    /// Mean busy servers / servers.
    pub utilisation: f64,
}

/// Exact MVA for `1..=max_users` users; the point for N users is `result[N - 1]`.
pub fn mva(p: &ClosedParams, max_users: u32) -> Vec<ClosedPoint> {
    let c = p.servers.max(1) as usize;
    let s = p.service_ms;
    let outside_ms = p.think_ms + p.delay_ms;
    // prob[j] = P(j requests at the station | n users), starting from n = 0.
    let mut prob = vec![1.0];
    let mut points = Vec::with_capacity(max_users as usize);
    for n in 1..=max_users as usize {
        // A request arriving to find j - 1 others is the j-th: it needs j·S/min(j, c) to leave.
        let station_ms: f64 = (1..=n)
            .map(|j| j as f64 * s / j.min(c) as f64 * prob[j - 1])
            .sum();
        let x_per_ms = n as f64 / (outside_ms + station_ms);
        let mut next = vec![0.0; n + 1];
        for j in 1..=n {
            next[j] = x_per_ms * s / j.min(c) as f64 * prob[j - 1];
        }
        // The recursion for p(0) loses precision near saturation; clamp the rounding error.
        next[0] = (1.0 - next[1..].iter().sum::<f64>()).max(0.0);
        prob = next;
        points.push(ClosedPoint {
            users: n as u32,
            throughput_per_s: x_per_ms * 1000.0,
            response_ms: p.delay_ms + station_ms,
            utilisation: x_per_ms * s / c as f64,
        });
    }
    points
}

/// The prediction for exactly `users` users (`None` for 0 users).
pub fn predict(p: &ClosedParams, users: u32) -> Option<ClosedPoint> {
    mva(p, users).pop()
}

/// Asymptotic bounds on throughput (per second): X ≤ min(c/S, N/(S + D + Z)).
pub fn throughput_bound(p: &ClosedParams, users: u32) -> f64 {
    let capacity = p.servers.max(1) as f64 / p.service_ms;
    let population = users as f64 / (p.service_ms + p.delay_ms + p.think_ms);
    capacity.min(population) * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(service_ms: f64, servers: u32, think_ms: f64) -> ClosedParams {
        ClosedParams {
            service_ms,
            servers,
            think_ms,
            delay_ms: 0.0,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn one_user_sees_the_service_time() {
        for (s, c, z) in [(150.0, 1, 0.0), (80.0, 4, 1000.0), (2.5, 2, 5000.0)] {
            let point = predict(&params(s, c, z), 1).expect("one user");
            assert!(close(point.response_ms, s), "{point:?}");
            assert!(close(point.throughput_per_s, 1000.0 / (s + z)));
        }
    }

    #[test]
    fn no_queue_while_users_fit_the_servers() {
        let p = params(120.0, 4, 0.0);
        for point in mva(&p, 4) {
            assert!(close(point.response_ms, 120.0), "{point:?}");
        }
        // The fifth user with no think time must wait.
        assert!(predict(&p, 5).expect("5 users").response_ms > 120.0 + 1.0);
    }

    #[test]
    fn zero_think_time_saturates_exactly() {
        // All N requests are always at the station: R = N·S/min(N, c).
        let p = params(100.0, 2, 0.0);
        for point in mva(&p, 9) {
            let n = f64::from(point.users);
            assert!(
                close(point.response_ms, n * 100.0 / n.min(2.0)),
                "{point:?}"
            );
        }
    }

    #[test]
    fn throughput_respects_both_asymptotes() {
        for (s, c, z) in [(100.0, 1, 0.0), (100.0, 3, 500.0), (40.0, 2, 1000.0)] {
            let p = params(s, c, z);
            let points = mva(&p, 200);
            for point in &points {
                assert!(point.throughput_per_s <= throughput_bound(&p, point.users) * (1.0 + 1e-9));
                assert!(point.utilisation <= 1.0 + 1e-9);
            }
            // Far past saturation the bound is reached.
            let last = points.last().expect("points");
            assert!(
                last.throughput_per_s > 0.99 * f64::from(c) / s * 1000.0,
                "{last:?}"
            );
        }
    }

    #[test]
    fn delay_adds_to_the_round_trip_and_the_cycle() {
        let with_delay = ClosedParams {
            delay_ms: 30.0,
            ..params(100.0, 1, 200.0)
        };
        let one = predict(&with_delay, 1).expect("one user");
        assert!(close(one.response_ms, 130.0));
        assert!(close(one.throughput_per_s, 1000.0 / 330.0));
    }

    /// The same closed system as a continuous-time Markov chain over the number of requests at
    /// the station, solved by Gaussian elimination on the generator: an independent check.
    fn markov(users: usize, service_ms: f64, servers: usize, think_ms: f64) -> (f64, f64) {
        let states = users + 1;
        let arrival = |j: usize| (users - j) as f64 / think_ms;
        let departure = |j: usize| j.min(servers) as f64 / service_ms;
        // Rows: balance equations πQ = 0 (transposed), the last replaced by Σπ = 1.
        let mut a = vec![vec![0.0; states + 1]; states];
        for j in 0..states {
            a[j][j] -= if j < users { arrival(j) } else { 0.0 } + departure(j);
            if j < users {
                a[j + 1][j] += arrival(j);
            }
            if j > 0 {
                a[j - 1][j] += departure(j);
            }
        }
        a[states - 1] = vec![1.0; states + 1];
        for col in 0..states {
            let pivot = (col..states)
                .max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))
                .expect("rows");
            a.swap(col, pivot);
            let pivot_row = a[col].clone();
            for (row, values) in a.iter_mut().enumerate() {
                if row != col {
                    let f = values[col] / pivot_row[col];
                    for (v, p) in values.iter_mut().zip(&pivot_row).skip(col) {
                        *v -= f * p;
                    }
                }
            }
        }
        let pi: Vec<f64> = (0..states).map(|j| a[j][states] / a[j][j]).collect();
        let x_per_ms: f64 = (0..states).map(|j| pi[j] * departure(j)).sum();
        let response_ms = users as f64 / x_per_ms - think_ms;
        (x_per_ms * 1000.0, response_ms)
    }

    #[test]
    fn mva_matches_the_markov_chain() {
        for (s, c, z) in [
            (100.0, 1, 300.0),
            (100.0, 2, 300.0),
            (150.0, 3, 1000.0),
            (50.0, 4, 20.0),
        ] {
            for point in mva(&params(s, c, z), 8) {
                let (x, r) = markov(point.users as usize, s, c as usize, z);
                assert!(
                    (point.throughput_per_s - x).abs() < 1e-7 * x,
                    "{point:?} vs X={x}"
                );
                assert!(
                    (point.response_ms - r).abs() < 1e-6 * r,
                    "{point:?} vs R={r}"
                );
            }
        }
    }
}
