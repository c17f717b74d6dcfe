//! True-positive rate at a fixed false-positive rate, with the threshold set on a separate
//! benign control set.
//!
//! Setting the threshold on the very negatives it is evaluated on would overstate what a
//! deployed detector achieves; a held-out control set gives the threshold a deployer would
//! actually pick, and the report states the false-positive rate it really yields on the
//! evaluation negatives.
//!
//! The rule, exactly: with `n` control scores and target rate `fpr`, let `k` be the largest
//! integer with `k / n <= fpr` (the division evaluated in `f64`, so `fpr = 0.29` with
//! `n = 100` gives `k = 29`). The threshold is the `(k + 1)`-th largest control score, and an
//! input is flagged when its score is strictly greater than the threshold. At most `k`
//! control scores exceed it (fewer when scores tie at the threshold), so the control false
//! -positive rate never exceeds `fpr`. When `n < 1 / fpr`, `k = 0`: the threshold is the
//! largest control score and the control rate is 0, so use at least `1 / fpr` control scores
//! (100 for 1% FPR, more for a stable threshold).

use crate::error::{EvalError, Result};
use crate::input::{check_binary, check_finite};

/// Outcome of [`tpr_at_fpr`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TprAtFpr {
    /// The false-positive rate asked for.
    pub target_fpr: f64,
    /// Inputs scoring strictly above this are flagged.
    pub threshold: f64,
    /// Fraction of positives flagged.
    pub tpr: f64,
    /// Fraction of the evaluation negatives flagged: the false-positive rate really obtained.
    pub fpr: f64,
    /// Fraction of the control scores flagged (at most `target_fpr` by construction).
    pub control_fpr: f64,
    pub n_pos: usize,
    pub n_neg: usize,
    pub n_control: usize,
}

/// The threshold that flags at most a fraction `fpr` of `control` (see the module docs for
/// the exact rule).
///
/// # Errors
/// Empty `control`, a non-finite control score, or `fpr` outside (0, 1).
pub fn threshold_at_fpr(control: &[f64], fpr: f64) -> Result<f64> {
    // Written as a positive test so that NaN is rejected too.
    if !(fpr > 0.0 && fpr < 1.0) {
        return Err(EvalError::FprOutOfRange { fpr });
    }
    if control.is_empty() {
        return Err(EvalError::EmptyInput { name: "control" });
    }
    check_finite("control", control)?;
    let n = control.len();
    // Start from floor(fpr * n) and correct by one where the product rounded across an
    // integer, so that k is exactly the largest k with k / n <= fpr.
    let mut k = ((fpr * n as f64).floor() as usize).min(n - 1);
    if k + 1 < n && (k + 1) as f64 / n as f64 <= fpr {
        k += 1;
    }
    if k > 0 && k as f64 / n as f64 > fpr {
        k -= 1;
    }
    let mut sorted = control.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    Ok(sorted[k])
}

/// TPR on the positives of (`scores`, `labels`) at the threshold that [`threshold_at_fpr`]
/// sets on `control`, with the false-positive rate that threshold gives on the negatives.
///
/// # Errors
/// Any error of [`threshold_at_fpr`], or invalid input as for [`crate::auroc()`].
pub fn tpr_at_fpr(control: &[f64], scores: &[f64], labels: &[bool], fpr: f64) -> Result<TprAtFpr> {
    let threshold = threshold_at_fpr(control, fpr)?;
    let (n_pos, n_neg) = check_binary(scores, labels)?;
    let flagged = |s: &f64| *s > threshold;
    let tp = scores
        .iter()
        .zip(labels)
        .filter(|(s, &l)| l && flagged(s))
        .count();
    let fp = scores
        .iter()
        .zip(labels)
        .filter(|(s, &l)| !l && flagged(s))
        .count();
    let control_fp = control.iter().filter(|s| flagged(s)).count();
    Ok(TprAtFpr {
        target_fpr: fpr,
        threshold,
        tpr: tp as f64 / n_pos as f64,
        fpr: fp as f64 / n_neg as f64,
        control_fpr: control_fp as f64 / control.len() as f64,
        n_pos,
        n_neg,
        n_control: control.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_is_the_k_plus_first_largest_control_score() {
        // 10 control scores 0.0, 0.1, ..., 0.9; fpr = 0.2 allows k = 2 above the threshold,
        // so the threshold is the 3rd largest, 0.7, and exactly 0.8 and 0.9 exceed it.
        let control: Vec<f64> = (0..10).map(|i| i as f64 / 10.0).collect();
        assert_eq!(threshold_at_fpr(&control, 0.2).unwrap(), 0.7);
        // fpr = 0.25 still allows only 2 of 10: the same threshold.
        assert_eq!(threshold_at_fpr(&control, 0.25).unwrap(), 0.7);
        // fpr below 1/10 allows none: the largest control score.
        assert_eq!(threshold_at_fpr(&control, 0.01).unwrap(), 0.9);
    }

    #[test]
    fn threshold_rule_survives_rounding_of_fpr_times_n() {
        // 0.29 * 100 = 28.999999999999996 in f64, yet 29 / 100 <= 0.29: k must be 29, so
        // exactly 29 of the scores 0..100 lie above the threshold 70.
        let control: Vec<f64> = (0..100).map(f64::from).collect();
        let threshold = threshold_at_fpr(&control, 0.29).unwrap();
        assert_eq!(threshold, 70.0);
        assert_eq!(control.iter().filter(|&&s| s > threshold).count(), 29);
    }

    #[test]
    fn control_fpr_never_exceeds_target_even_with_ties() {
        // Five of ten control scores tie at the top. 40% FPR allows 4 above the threshold, but
        // no threshold separates 4 of the tied five, so it lands on the tie and the control
        // rate really obtained is 0.
        let control = [1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.4, 0.3, 0.2, 0.1];
        let report = tpr_at_fpr(&control, &[1.0, 2.0, 0.0], &[false, true, true], 0.4).unwrap();
        assert_eq!(report.threshold, 1.0);
        assert_eq!(report.control_fpr, 0.0);
        assert!(report.control_fpr <= report.target_fpr);
    }

    #[test]
    fn tpr_at_fpr_matches_hand_count() {
        // Control 0..100 at 1% FPR: k = 1, threshold = 98 (only 99 exceeds it).
        // Positives 97, 98.5, 99.5, 120 -> 3 of 4 above 98: TPR 0.75.
        // Negatives 10, 98, 98.1, 50, 60 -> only 98.1 above: FPR 0.2.
        let control: Vec<f64> = (0..100).map(f64::from).collect();
        let scores = [97.0, 98.5, 99.5, 120.0, 10.0, 98.0, 98.1, 50.0, 60.0];
        let labels = [true, true, true, true, false, false, false, false, false];
        let r = tpr_at_fpr(&control, &scores, &labels, 0.01).unwrap();
        assert_eq!(r.threshold, 98.0);
        assert_eq!(r.tpr, 0.75);
        assert_eq!(r.fpr, 0.2);
        assert_eq!(r.control_fpr, 0.01);
        assert_eq!((r.n_pos, r.n_neg, r.n_control), (4, 5, 100));
    }

    #[test]
    fn tpr_at_fpr_rejects_bad_input() {
        let control = [0.1, 0.2, 0.3];
        for fpr in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
            assert!(matches!(
                threshold_at_fpr(&control, fpr),
                Err(EvalError::FprOutOfRange { .. })
            ));
        }
        assert_eq!(
            threshold_at_fpr(&[], 0.01),
            Err(EvalError::EmptyInput { name: "control" })
        );
        assert!(matches!(
            threshold_at_fpr(&[0.1, f64::NAN], 0.01),
            Err(EvalError::NonFiniteScore {
                name: "control",
                index: 1,
                ..
            })
        ));
        assert!(matches!(
            tpr_at_fpr(&control, &[0.5, 0.6], &[true, true], 0.01),
            Err(EvalError::EmptyClass { .. })
        ));
    }
}
