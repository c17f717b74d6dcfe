//! Calibration of probabilistic scores in [0, 1]: the Brier score, the reliability diagram's
//! bins and the expected calibration error (ECE).
//!
//! AUROC ignores calibration entirely (it sees only the order of scores); these metrics say
//! whether a score of 0.9 really means "positive nine times out of ten".

use crate::error::{EvalError, Result};
use crate::input::check_same_len;

/// Mean squared difference between probability and outcome (1 for a positive, 0 for a
/// negative), as scikit-learn's `brier_score_loss`. 0 is perfect; always predicting 0.5 gives
/// 0.25.
///
/// # Errors
/// Empty or mismatched input, or a probability that is non-finite or outside [0, 1].
pub fn brier_score(probs: &[f64], labels: &[bool]) -> Result<f64> {
    check_probabilities(probs, labels)?;
    let total: f64 = probs
        .iter()
        .zip(labels)
        .map(|(&p, &l)| (p - outcome(l)).powi(2))
        .sum();
    Ok(total / probs.len() as f64)
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibrationBin {
    /// Lower edge, `i / n_bins` (inclusive).
    pub lo: f64,
    /// Upper edge, `(i + 1) / n_bins` (exclusive, except that the last bin includes 1).
    pub hi: f64,
    /// Number of probabilities in the bin.
    pub count: usize,
    /// Mean predicted probability; `None` for an empty bin.
    pub mean_prob: Option<f64>,
    /// Fraction of positives; `None` for an empty bin.
    pub frac_pos: Option<f64>,
}

/// Equal-width bins over [0, 1]: bin `i` holds the probabilities `p` with
/// `i / n_bins <= p < (i + 1) / n_bins` (edges evaluated in `f64`), the last bin also holding
/// `p = 1`. Every bin is returned, empty ones included, so a plot shows the gaps.
///
/// # Errors
/// `n_bins == 0`, empty or mismatched input, or a probability that is non-finite or outside
/// [0, 1].
pub fn reliability_bins(
    probs: &[f64],
    labels: &[bool],
    n_bins: usize,
) -> Result<Vec<CalibrationBin>> {
    if n_bins == 0 {
        return Err(EvalError::ZeroCount {
            name: "n_bins",
            value: 0,
        });
    }
    check_probabilities(probs, labels)?;
    let mut count = vec![0usize; n_bins];
    let mut sum_prob = vec![0.0; n_bins];
    let mut sum_pos = vec![0.0; n_bins];
    for (&p, &l) in probs.iter().zip(labels) {
        let b = bin_index(p, n_bins);
        count[b] += 1;
        sum_prob[b] += p;
        sum_pos[b] += outcome(l);
    }
    Ok((0..n_bins)
        .map(|b| {
            let n = count[b] as f64;
            CalibrationBin {
                lo: b as f64 / n_bins as f64,
                hi: (b + 1) as f64 / n_bins as f64,
                count: count[b],
                mean_prob: (count[b] > 0).then(|| sum_prob[b] / n),
                frac_pos: (count[b] > 0).then(|| sum_pos[b] / n),
            }
        })
        .collect())
}

/// Expected calibration error: over the [`reliability_bins`], the mean of
/// `|fraction of positives - mean probability|` weighted by the share of examples in the bin.
/// Empty bins contribute nothing.
///
/// # Errors
/// As [`reliability_bins`].
pub fn expected_calibration_error(probs: &[f64], labels: &[bool], n_bins: usize) -> Result<f64> {
    let bins = reliability_bins(probs, labels, n_bins)?;
    let n = probs.len() as f64;
    Ok(bins
        .iter()
        .filter_map(|b| match (b.mean_prob, b.frac_pos) {
            (Some(p), Some(f)) => Some(b.count as f64 / n * (f - p).abs()),
            _ => None,
        })
        .sum())
}

/// Mean binary cross-entropy (log loss) of probabilities against outcomes, in nats, as
/// scikit-learn's `log_loss` with its clipping: each probability is clipped to
/// `[eps, 1 - eps]` with `eps = 1e-15` so that a confident mistake costs about 34.5 nats
/// instead of infinity. TrojAI scores its round submissions with this loss; always predicting
/// 0.5 gives ln 2 = 0.693.
///
/// # Errors
/// As [`brier_score`].
pub fn log_loss(probs: &[f64], labels: &[bool]) -> Result<f64> {
    check_probabilities(probs, labels)?;
    const EPS: f64 = 1e-15;
    let total: f64 = probs
        .iter()
        .zip(labels)
        .map(|(&p, &l)| {
            let p = p.clamp(EPS, 1.0 - EPS);
            if l {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum();
    Ok(total / probs.len() as f64)
}

fn outcome(label: bool) -> f64 {
    if label {
        1.0
    } else {
        0.0
    }
}

fn check_probabilities(probs: &[f64], labels: &[bool]) -> Result<()> {
    check_same_len("probabilities", probs.len(), "labels", labels.len())?;
    if probs.is_empty() {
        return Err(EvalError::EmptyInput {
            name: "probabilities",
        });
    }
    // A positive range test rejects NaN and the infinities together.
    match probs.iter().position(|p| !(0.0..=1.0).contains(p)) {
        Some(index) => Err(EvalError::ProbabilityOutOfRange {
            index,
            value: probs[index],
        }),
        None => Ok(()),
    }
}

/// The bin of `p` in [0, 1]. `floor(p * n_bins)` can land one bin off when the product rounds
/// across an integer (0.29 * 100 = 28.999999999999996), so it is corrected against the
/// edges `i / n_bins` that the documentation promises.
fn bin_index(p: f64, n_bins: usize) -> usize {
    let edge = |i: usize| i as f64 / n_bins as f64;
    let mut b = ((p * n_bins as f64).floor() as usize).min(n_bins - 1);
    if b + 1 < n_bins && edge(b + 1) <= p {
        b += 1;
    }
    if b > 0 && edge(b) > p {
        b -= 1;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn brier_score_matches_hand_computation() {
        // (0.9 - 1)^2 + (0.2 - 0)^2 + (0.6 - 0)^2 + (1 - 1)^2 = 0.01 + 0.04 + 0.36 + 0 = 0.41;
        // / 4 = 0.1025.
        let probs = [0.9, 0.2, 0.6, 1.0];
        let labels = [true, false, false, true];
        assert_close(brier_score(&probs, &labels).unwrap(), 0.1025);
    }

    #[test]
    fn log_loss_matches_hand_computation_and_clips() {
        // -(ln 0.9 + ln 0.8 + ln 0.4) / 3 (the third is a negative predicted at 0.6).
        let probs = [0.9, 0.2, 0.6];
        let labels = [true, false, false];
        let expected = -(0.9f64.ln() + 0.8f64.ln() + 0.4f64.ln()) / 3.0;
        assert_close(log_loss(&probs, &labels).unwrap(), expected);
        // A confident mistake is clipped at 1e-15: -ln(1e-15) = 34.538776394910684.
        let clipped = log_loss(&[0.0], &[true]).unwrap();
        assert!((clipped - 34.538_776_394_910_684).abs() < 1e-9, "{clipped}");
        assert_close(log_loss(&[0.5, 0.5], &[true, false]).unwrap(), 2f64.ln());
        assert!(log_loss(&[f64::NAN], &[true]).is_err());
        assert!(log_loss(&[0.5], &[true, false]).is_err());
    }

    #[test]
    fn ece_matches_hand_computation() {
        // Two bins. [0, 0.5): 0.1, 0.2, 0.3 with labels -, -, + -> mean prob 0.2, frac 1/3,
        // gap 2/15. [0.5, 1]: 0.5, 0.9 with labels +, + -> mean prob 0.7, frac 1, gap 0.3.
        // ECE = 3/5 * 2/15 + 2/5 * 0.3 = 0.08 + 0.12 = 0.2.
        let probs = [0.1, 0.2, 0.3, 0.5, 0.9];
        let labels = [false, false, true, true, true];
        assert_close(expected_calibration_error(&probs, &labels, 2).unwrap(), 0.2);
        let bins = reliability_bins(&probs, &labels, 2).unwrap();
        assert_eq!(bins[0].count, 3);
        assert_eq!(bins[1].count, 2);
    }

    #[test]
    fn perfectly_calibrated_bins_have_zero_ece() {
        // In each bin the fraction of positives equals the (constant) probability.
        let probs = [0.25, 0.25, 0.25, 0.25, 0.75, 0.75, 0.75, 0.75];
        let labels = [true, false, false, false, true, true, true, false];
        assert_close(
            expected_calibration_error(&probs, &labels, 10).unwrap(),
            0.0,
        );
    }

    #[test]
    fn bins_follow_documented_edges() {
        assert_eq!(bin_index(0.0, 10), 0);
        assert_eq!(bin_index(1.0, 10), 9, "1 belongs to the last bin");
        assert_eq!(bin_index(0.29, 100), 29, "0.29 * 100 rounds below 29");
        assert_eq!(bin_index(0.3, 10), 3);
        assert_eq!(bin_index(0.299_999, 10), 2);
        let bins = reliability_bins(&[0.05], &[true], 4).unwrap();
        assert_eq!(bins.len(), 4);
        assert_eq!(bins[3].mean_prob, None, "empty bins are reported, not NaN");
        assert_eq!((bins[3].lo, bins[3].hi), (0.75, 1.0));
    }

    #[test]
    fn calibration_rejects_bad_input() {
        for bad in [1.5, -0.1, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                brier_score(&[0.5, bad], &[true, false]),
                Err(EvalError::ProbabilityOutOfRange { index: 1, .. })
            ));
        }
        assert!(matches!(
            expected_calibration_error(&[0.5], &[true], 0),
            Err(EvalError::ZeroCount { name: "n_bins", .. })
        ));
        assert_eq!(
            brier_score(&[], &[]),
            Err(EvalError::EmptyInput {
                name: "probabilities"
            })
        );
        assert!(matches!(
            expected_calibration_error(&[0.5], &[true, false], 10),
            Err(EvalError::LengthMismatch { .. })
        ));
    }
}
