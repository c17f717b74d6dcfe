//! Input checks shared by every metric, so each public function validates the same way and
//! reports the same error for the same mistake.

use crate::error::{Class, EvalError, Result};

/// Every score must be finite: a NaN has no rank, and an infinity hides a detector bug.
pub(crate) fn check_finite(name: &'static str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(EvalError::NonFiniteScore {
            name,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

pub(crate) fn check_same_len(
    left_name: &'static str,
    left: usize,
    right_name: &'static str,
    right: usize,
) -> Result<()> {
    if left == right {
        Ok(())
    } else {
        Err(EvalError::LengthMismatch {
            left_name,
            left,
            right_name,
            right,
        })
    }
}

/// Checks scores against labels for a ranking metric and returns `(n_pos, n_neg)`, both > 0.
pub(crate) fn check_binary(scores: &[f64], labels: &[bool]) -> Result<(usize, usize)> {
    check_same_len("scores", scores.len(), "labels", labels.len())?;
    check_finite("scores", scores)?;
    let n_pos = labels.iter().filter(|&&l| l).count();
    let n_neg = labels.len() - n_pos;
    if n_pos == 0 {
        return Err(EvalError::EmptyClass {
            class: Class::Positive,
        });
    }
    if n_neg == 0 {
        return Err(EvalError::EmptyClass {
            class: Class::Negative,
        });
    }
    Ok((n_pos, n_neg))
}

pub(crate) fn check_confidence(confidence: f64) -> Result<()> {
    // Written as a positive test so that NaN is rejected too.
    if confidence > 0.0 && confidence < 1.0 {
        Ok(())
    } else {
        Err(EvalError::ConfidenceOutOfRange { confidence })
    }
}

/// 1-based ranks in ascending order of `values`, tied values sharing the mean of their ranks
/// (the "midranks" of Mann-Whitney and DeLong). `values` must be finite.
pub(crate) fn midranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end (0-based) hold ranks start+1..=end; their mean is below.
        let rank = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}
