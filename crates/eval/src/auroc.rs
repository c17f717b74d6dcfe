//! Ranking metrics: AUROC, the ROC curve and average precision, computed exactly as
//! scikit-learn's `roc_auc_score`, `roc_curve(drop_intermediate=False)` and
//! `average_precision_score` compute them.
//!
//! Convention throughout the crate: `labels[i] == true` marks a positive, and a higher score
//! means "more likely positive".

use crate::error::Result;
use crate::input::{check_binary, midranks};

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative, a tie counting one half.
///
/// Computed from midranks (the Mann-Whitney U statistic), which equals the trapezoidal area
/// under scikit-learn's ROC curve, ties included.
///
/// # Errors
/// Mismatched lengths, a non-finite score, or no examples of one class.
pub fn auroc(scores: &[f64], labels: &[bool]) -> Result<f64> {
    let (n_pos, n_neg) = check_binary(scores, labels)?;
    Ok(auroc_unchecked(scores, labels, n_pos, n_neg))
}

/// Points of the ROC curve, one per distinct score plus the origin.
#[derive(Debug, Clone, PartialEq)]
pub struct RocCurve {
    /// False-positive rates, non-decreasing from 0 to 1.
    pub fpr: Vec<f64>,
    /// True-positive rates, non-decreasing from 0 to 1.
    pub tpr: Vec<f64>,
    /// Decreasing thresholds; point `k` flags every score `>= thresholds[k]`. The first is
    /// `f64::INFINITY` (flags nothing), as in scikit-learn >= 1.3.
    pub thresholds: Vec<f64>,
}

/// The ROC curve with every distinct score as a threshold (scikit-learn's `roc_curve` with
/// `drop_intermediate=False`).
///
/// # Errors
/// Mismatched lengths, a non-finite score, or no examples of one class.
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Result<RocCurve> {
    let (n_pos, n_neg) = check_binary(scores, labels)?;
    let counts = counts_by_threshold(scores, labels);
    let mut curve = RocCurve {
        fpr: Vec::with_capacity(counts.len() + 1),
        tpr: Vec::with_capacity(counts.len() + 1),
        thresholds: Vec::with_capacity(counts.len() + 1),
    };
    curve.fpr.push(0.0);
    curve.tpr.push(0.0);
    curve.thresholds.push(f64::INFINITY);
    for c in counts {
        curve.fpr.push(c.fp as f64 / n_neg as f64);
        curve.tpr.push(c.tp as f64 / n_pos as f64);
        curve.thresholds.push(c.threshold);
    }
    Ok(curve)
}

/// Average precision: the sum over thresholds of (recall gained) x (precision there), i.e.
/// scikit-learn's `average_precision_score` (a step function, no interpolation).
///
/// Both classes are required, as for AUROC, so that the chance level (the positive fraction)
/// is always meaningful next to it.
///
/// # Errors
/// Mismatched lengths, a non-finite score, or no examples of one class.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Result<f64> {
    let (n_pos, _) = check_binary(scores, labels)?;
    let mut ap = 0.0;
    let mut last_tp = 0;
    for c in counts_by_threshold(scores, labels) {
        let recall_gain = (c.tp - last_tp) as f64 / n_pos as f64;
        let precision = c.tp as f64 / (c.tp + c.fp) as f64;
        ap += recall_gain * precision;
        last_tp = c.tp;
    }
    Ok(ap)
}

/// AUROC of input already known to be valid; the bootstrap calls this on every resample.
pub(crate) fn auroc_unchecked(scores: &[f64], labels: &[bool], n_pos: usize, n_neg: usize) -> f64 {
    let ranks = midranks(scores);
    let rank_sum_pos: f64 = ranks
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l)
        .map(|(r, _)| r)
        .sum();
    // Mann-Whitney: U = R_pos - n_pos (n_pos + 1) / 2 counts the (positive, negative) pairs
    // won by the positive, ties as one half.
    let n_pos_f = n_pos as f64;
    let u = rank_sum_pos - n_pos_f * (n_pos_f + 1.0) / 2.0;
    u / (n_pos_f * n_neg as f64)
}

/// Cumulative true and false positives when flagging every score `>= threshold`.
struct ThresholdCounts {
    threshold: f64,
    tp: usize,
    fp: usize,
}

/// One entry per distinct score, in decreasing order of score (scikit-learn's
/// `_binary_clf_curve`).
fn counts_by_threshold(scores: &[f64], labels: &[bool]) -> Vec<ThresholdCounts> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut counts = Vec::new();
    let (mut tp, mut fp) = (0, 0);
    for (k, &i) in order.iter().enumerate() {
        if labels[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        // A threshold sits only after the last of a run of tied scores: a tie cannot be split.
        let run_ends = k + 1 == order.len() || scores[order[k + 1]] != scores[i];
        if run_ends {
            counts.push(ThresholdCounts {
                threshold: scores[i],
                tp,
                fp,
            });
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Class, EvalError};

    const TOL: f64 = 1e-12;

    // The small tied example used for the scikit-learn reference values below.
    const TIED_SCORES: [f64; 10] = [0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.9, 0.1, 0.65, 0.35];
    const TIED_LABELS: [bool; 10] = [
        false, false, true, true, true, false, true, false, false, true,
    ];

    // Reference values printed by scikit-learn 1.9.1 (numpy 2.4.6) for the tied example; the
    // exact commands are in the tests that use them.
    const SKLEARN_AUROC: f64 = 0.68;
    const SKLEARN_AP: f64 = 0.75;
    const SKLEARN_FPR: [f64; 7] = [0.0, 0.0, 0.0, 0.2, 0.6, 0.6, 1.0];
    const SKLEARN_TPR: [f64; 7] = [0.0, 0.2, 0.4, 0.4, 0.6, 1.0, 1.0];
    const SKLEARN_THRESHOLDS: [f64; 7] = [f64::INFINITY, 0.9, 0.8, 0.65, 0.4, 0.35, 0.1];

    fn assert_close(a: f64, b: f64) {
        assert!((a - b).abs() < TOL, "{a} != {b}");
    }

    #[test]
    fn auroc_matches_hand_count_of_pairs() {
        // Positives {0.9, 0.6, 0.3}, negatives {0.6, 0.2}. Pairs won by the positive:
        // 0.9 beats both (2); 0.6 ties 0.6 (0.5) and beats 0.2 (1); 0.3 beats 0.2 (1).
        // AUROC = (2 + 1.5 + 1) / (3 * 2) = 4.5 / 6 = 0.75.
        let scores = [0.9, 0.6, 0.3, 0.6, 0.2];
        let labels = [true, true, true, false, false];
        assert_close(auroc(&scores, &labels).unwrap(), 0.75);
    }

    #[test]
    fn auroc_of_all_tied_scores_is_one_half() {
        let scores = [1.0; 6];
        let labels = [true, false, true, false, false, true];
        assert_close(auroc(&scores, &labels).unwrap(), 0.5);
    }

    #[test]
    fn auroc_matches_sklearn_on_tied_example() {
        // python -c "from sklearn.metrics import roc_auc_score; print(repr(roc_auc_score(
        //   [0,0,1,1,1,0,1,0,0,1], [0.1,0.4,0.35,0.8,0.4,0.4,0.9,0.1,0.65,0.35])))"
        // (scikit-learn 1.9.1, numpy 2.4.6) printed 0.68. By hand: positives 0.9 and 0.8
        // beat all 5 negatives (10), each 0.4 beats two 0.1s and ties two 0.4s (3), each 0.35
        // beats two 0.1s (2 + 2): 17 / 25 = 0.68.
        assert_close(auroc(&TIED_SCORES, &TIED_LABELS).unwrap(), SKLEARN_AUROC);
    }

    #[test]
    fn average_precision_matches_hand_computation() {
        // Sorted by score: 0.9 (+), 0.6 (-), 0.3 (+), 0.2 (-). Recall steps of 1/2 at ranks 1
        // and 3 with precision 1/1 and 2/3: AP = 0.5 * 1 + 0.5 * 2/3 = 5/6.
        let scores = [0.9, 0.6, 0.3, 0.2];
        let labels = [true, false, true, false];
        assert_close(average_precision(&scores, &labels).unwrap(), 5.0 / 6.0);
    }

    #[test]
    fn average_precision_matches_sklearn_on_tied_example() {
        // python -c "from sklearn.metrics import average_precision_score as f; print(repr(f(
        //   [0,0,1,1,1,0,1,0,0,1], [0.1,0.4,0.35,0.8,0.4,0.4,0.9,0.1,0.65,0.35])))"
        assert_close(
            average_precision(&TIED_SCORES, &TIED_LABELS).unwrap(),
            SKLEARN_AP,
        );
    }

    #[test]
    fn roc_curve_matches_sklearn_on_tied_example() {
        // python -c "from sklearn.metrics import roc_curve; f,t,th = roc_curve(
        //   [0,0,1,1,1,0,1,0,0,1], [0.1,0.4,0.35,0.8,0.4,0.4,0.9,0.1,0.65,0.35],
        //   drop_intermediate=False); print(f.tolist(), t.tolist(), th.tolist())"
        let curve = roc_curve(&TIED_SCORES, &TIED_LABELS).unwrap();
        assert_eq!(curve.fpr.len(), SKLEARN_FPR.len());
        for (a, b) in curve.fpr.iter().zip(SKLEARN_FPR) {
            assert_close(*a, b);
        }
        for (a, b) in curve.tpr.iter().zip(SKLEARN_TPR) {
            assert_close(*a, b);
        }
        assert_eq!(curve.thresholds, SKLEARN_THRESHOLDS);
    }

    #[test]
    fn trapezoid_under_roc_curve_equals_auroc() {
        let curve = roc_curve(&TIED_SCORES, &TIED_LABELS).unwrap();
        let area: f64 = (1..curve.fpr.len())
            .map(|k| (curve.fpr[k] - curve.fpr[k - 1]) * (curve.tpr[k] + curve.tpr[k - 1]) / 2.0)
            .sum();
        assert_close(area, auroc(&TIED_SCORES, &TIED_LABELS).unwrap());
    }

    #[test]
    fn negating_scores_gives_one_minus_auroc() {
        let negated: Vec<f64> = TIED_SCORES.iter().map(|s| -s).collect();
        let a = auroc(&TIED_SCORES, &TIED_LABELS).unwrap();
        let b = auroc(&negated, &TIED_LABELS).unwrap();
        assert_close(a + b, 1.0);
    }

    #[test]
    fn auroc_is_invariant_under_strictly_monotone_transforms() {
        let a = auroc(&TIED_SCORES, &TIED_LABELS).unwrap();
        let transforms: [fn(f64) -> f64; 3] = [
            |s| (3.0 * s).exp(),
            |s| 1.0 / (1.0 + (-10.0 * (s - 0.5)).exp()),
            |s| 7.0 * s - 2.0,
        ];
        for t in transforms {
            let moved: Vec<f64> = TIED_SCORES.iter().map(|&s| t(s)).collect();
            assert_close(auroc(&moved, &TIED_LABELS).unwrap(), a);
            assert_close(
                average_precision(&moved, &TIED_LABELS).unwrap(),
                average_precision(&TIED_SCORES, &TIED_LABELS).unwrap(),
            );
        }
    }

    #[test]
    fn perfect_separation_gives_one_and_reversed_gives_zero() {
        let scores = [0.1, 0.2, 0.8, 0.9];
        let labels = [false, false, true, true];
        assert_close(auroc(&scores, &labels).unwrap(), 1.0);
        assert_close(average_precision(&scores, &labels).unwrap(), 1.0);
        let flipped = [true, true, false, false];
        assert_close(auroc(&scores, &flipped).unwrap(), 0.0);
    }

    #[test]
    fn ranking_metrics_reject_bad_input() {
        assert_eq!(
            auroc(&[0.1, 0.2], &[true, true]),
            Err(EvalError::EmptyClass {
                class: Class::Negative
            })
        );
        assert_eq!(
            average_precision(&[0.1, 0.2], &[false, false]),
            Err(EvalError::EmptyClass {
                class: Class::Positive
            })
        );
        assert!(matches!(
            roc_curve(&[0.1, f64::NAN], &[true, false]),
            Err(EvalError::NonFiniteScore { index: 1, .. })
        ));
        assert!(matches!(
            auroc(&[0.1, f64::INFINITY], &[true, false]),
            Err(EvalError::NonFiniteScore { index: 1, .. })
        ));
        assert!(matches!(
            auroc(&[0.1, 0.2, 0.3], &[true, false]),
            Err(EvalError::LengthMismatch {
                left: 3,
                right: 2,
                ..
            })
        ));
        assert!(matches!(auroc(&[], &[]), Err(EvalError::EmptyClass { .. })));
    }
}
