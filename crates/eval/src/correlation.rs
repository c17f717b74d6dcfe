//! Rank correlation between a signal and an outcome across models (e.g. does a training-only
//! signal track a measured misgeneralization rate?), with a permutation test, because with a
//! handful of models the normal approximation of its null is poor.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::error::{EvalError, Result};
use crate::input::{check_finite, check_same_len, midranks};

/// Spearman's rank correlation of `x` and `y`: Pearson's correlation of their ranks, ties given
/// their mean rank (as `scipy.stats.spearmanr`).
///
/// # Errors
/// Lengths differ, fewer than 2 pairs, a non-finite value, or a side that is constant (the
/// correlation is then undefined: [`EvalError::ConstantInput`]).
pub fn spearman(x: &[f64], y: &[f64]) -> Result<f64> {
    check_same_len("x", x.len(), "y", y.len())?;
    if x.len() < 2 {
        return Err(EvalError::EmptyInput {
            name: "x (a correlation needs at least 2 pairs)",
        });
    }
    check_finite("x", x)?;
    check_finite("y", y)?;
    pearson_of_ranks(&midranks(x), &midranks(y))
}

/// Spearman's correlation and its two-sided permutation p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpearmanTest {
    pub rho: f64,
    /// Share of `n_permutations` seeded shuffles of `y` whose |rho| reaches the observed one,
    /// the observed order counted among them (so it is never 0).
    pub p_value: f64,
    pub n: usize,
}

/// [`spearman`] with a two-sided permutation test over `n_permutations` seeded shuffles of `y`.
///
/// # Errors
/// As [`spearman`]; also `n_permutations == 0`.
pub fn spearman_permutation_test(
    x: &[f64],
    y: &[f64],
    n_permutations: usize,
    seed: u64,
) -> Result<SpearmanTest> {
    if n_permutations == 0 {
        return Err(EvalError::ZeroCount {
            name: "n_permutations",
            value: 0,
        });
    }
    let rho = spearman(x, y)?;
    let (rx, mut ry) = (midranks(x), midranks(y));
    let mut rng = StdRng::seed_from_u64(seed);
    let mut at_least = 1;
    for _ in 0..n_permutations {
        ry.shuffle(&mut rng);
        // Shuffling ranks keeps both sides non-constant, so this cannot fail.
        let r = pearson_of_ranks(&rx, &ry)?;
        if r.abs() >= rho.abs() - 1e-12 {
            at_least += 1;
        }
    }
    Ok(SpearmanTest {
        rho,
        p_value: at_least as f64 / (n_permutations + 1) as f64,
        n: x.len(),
    })
}

fn pearson_of_ranks(x: &[f64], y: &[f64]) -> Result<f64> {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    if vx == 0.0 {
        return Err(EvalError::ConstantInput { name: "x" });
    }
    if vy == 0.0 {
        return Err(EvalError::ConstantInput { name: "y" });
    }
    Ok(cov / (vx * vy).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_matches_scipy_with_and_without_ties() {
        // scipy.stats.spearmanr([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]).statistic = 0.8207826816681233
        let rho = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0]).unwrap();
        assert!((rho - 0.8207826816681233).abs() < 1e-12, "{rho}");
        // A monotone transform changes nothing; reversing flips the sign.
        let x = [0.3, 1.5, -2.0, 7.0, 4.0];
        let cubed: Vec<f64> = x.iter().map(|v| v * v * v).collect();
        assert!((spearman(&x, &cubed).unwrap() - 1.0).abs() < 1e-12);
        let negated: Vec<f64> = x.iter().map(|v| -v).collect();
        assert!((spearman(&x, &negated).unwrap() + 1.0).abs() < 1e-12);
    }

    #[test]
    fn spearman_refuses_undefined_inputs() {
        assert!(matches!(
            spearman(&[1.0, 2.0, 3.0], &[4.0, 4.0, 4.0]),
            Err(EvalError::ConstantInput { name: "y" })
        ));
        assert!(spearman(&[1.0], &[2.0]).is_err());
        assert!(spearman(&[1.0, 2.0], &[2.0]).is_err());
        assert!(spearman(&[1.0, f64::NAN], &[2.0, 3.0]).is_err());
    }

    #[test]
    fn permutation_p_value_is_small_for_a_perfect_order_and_large_for_noise() {
        let x: Vec<f64> = (0..12).map(f64::from).collect();
        let perfect = spearman_permutation_test(&x, &x, 5000, 0).unwrap();
        assert!((perfect.rho - 1.0).abs() < 1e-12);
        // Two of 12! orders reach |rho| = 1: the p-value is about 1 / 5001.
        assert!(perfect.p_value < 0.002, "{}", perfect.p_value);
        let scrambled = [5.0, 11.0, 0.0, 7.0, 3.0, 9.0, 1.0, 10.0, 4.0, 6.0, 2.0, 8.0];
        let weak = spearman_permutation_test(&x, &scrambled, 5000, 0).unwrap();
        assert!(weak.rho.abs() < 0.3, "{}", weak.rho);
        assert!(weak.p_value > 0.3, "{}", weak.p_value);
        // Same seed, same p-value.
        assert_eq!(
            weak,
            spearman_permutation_test(&x, &scrambled, 5000, 0).unwrap()
        );
    }
}
