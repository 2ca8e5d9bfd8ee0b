//! Confidence intervals for percentiles without assuming a distribution: the interval between
//! two order statistics of the sample (Le Boudec, *Performance Evaluation of Computer and
//! Communication Systems*, §2.4.2). The number of values below the true q-quantile is
//! binomial (n, q), which fixes, for any distribution, the chance that the quantile lies
//! between the l-th and the u-th smallest value. Exact at any n, cheap, and unlike a bootstrap
//! it does not pretend to know tails it has not seen: below a minimum n (6 for the median, 72
//! for p95, 368 for p99 at 95 %: the n where even the largest value is above the quantile
//! with probability 1 − qⁿ ≥ 97.5 %) no such interval exists, and the report says so.

/// The 1-based ranks (l, u) such that [x₍ₗ₎, x₍ᵤ₎] holds the q-quantile with probability at
/// least 1 − `alpha` (α/2 on each side); `None` when n is too small for it.
pub fn rank_interval(n: usize, q: f64, alpha: f64) -> Option<(usize, usize)> {
    if n == 0 || !(0.0 < q && q < 1.0) {
        return None;
    }
    let cdf = binomial_cdf(n, q);
    // P(B < k) = cdf[k − 1]: the chance that x₍ₖ₎ is above the quantile.
    let l = (1..=n).rev().find(|&k| cdf[k - 1] <= alpha / 2.0)?;
    let u = (1..=n).find(|&k| cdf[k - 1] >= 1.0 - alpha / 2.0)?;
    (l < u).then_some((l, u))
}

/// The 95 % interval of the q-quantile of `sorted` (ascending), or `None` when it has too few
/// values.
pub fn quantile_ci95(sorted: &[f64], q: f64) -> Option<(f64, f64)> {
    let (l, u) = rank_interval(sorted.len(), q, 0.05)?;
    Some((sorted[l - 1], sorted[u - 1]))
}

/// The fewest values for which a 95 % interval of the q-quantile exists.
pub fn min_values(q: f64) -> usize {
    (1..100_000)
        .find(|&n| rank_interval(n, q, 0.05).is_some())
        .unwrap_or(usize::MAX)
}

/// P(B ≤ k) for k = 0..n, B binomial (n, q), from the log probabilities (no underflow at
/// large n).
fn binomial_cdf(n: usize, q: f64) -> Vec<f64> {
    let (ln_q, ln_p) = (q.ln(), (1.0 - q).ln());
    let mut log_pmf = Vec::with_capacity(n + 1);
    let mut l = n as f64 * ln_p;
    for k in 0..=n {
        log_pmf.push(l);
        if k < n {
            l += ((n - k) as f64).ln() - ((k + 1) as f64).ln() + ln_q - ln_p;
        }
    }
    let top = log_pmf.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = log_pmf.iter().map(|l| (l - top).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc.min(1.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_sizes_are_where_the_largest_value_bounds_the_quantile() {
        // The upper rank must exist: 1 − qⁿ ≥ 0.975, i.e. n ≥ ln 0.025 / ln q.
        for (q, n) in [(0.5, 6), (0.95, 72), (0.99, 368)] {
            assert_eq!(min_values(q), n, "q = {q}");
            assert!(1.0 - q.powi(n as i32) >= 0.975 && 1.0 - q.powi(n as i32 - 1) < 0.975);
        }
    }

    #[test]
    fn intervals_match_known_ranks() {
        // Median, n = 10: [x₂, x₉] (coverage 97.9 %); n = 100: [x₄₀, x₆₁].
        assert_eq!(rank_interval(10, 0.5, 0.05), Some((2, 9)));
        assert_eq!(rank_interval(100, 0.5, 0.05), Some((40, 61)));
        assert_eq!(rank_interval(5, 0.5, 0.05), None);
        assert_eq!(rank_interval(367, 0.99, 0.05), None);
        assert!(rank_interval(368, 0.99, 0.05).is_some());
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(quantile_ci95(&values, 0.5), Some((2.0, 9.0)));
    }

    #[test]
    fn coverage_is_at_least_95_percent_by_simulation() {
        // Uniform(0, 1) samples: the true p95 is 0.95.
        let mut state = 11u64;
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let trials = 2_000;
        let covered = (0..trials)
            .filter(|_| {
                let mut v: Vec<f64> = (0..200).map(|_| uniform()).collect();
                v.sort_by(f64::total_cmp);
                quantile_ci95(&v, 0.95).is_some_and(|(lo, hi)| lo <= 0.95 && 0.95 <= hi)
            })
            .count();
        assert!(
            covered as f64 / trials as f64 >= 0.94,
            "{covered} of {trials}"
        );
    }
}
