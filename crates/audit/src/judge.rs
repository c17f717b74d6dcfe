//! Judging a risk model as TrojAI judges its rounds: on held-out models (whole trigger
//! families never seen in training, decoys among the negatives), AUROC with a 95% CI, TPR at
//! 1% FPR with the threshold from a separate benign set (the training negatives), the
//! cross-entropy of the risk with its CI, calibration (Brier, ECE), and whether the aggregate
//! beats the best single detector (DeLong's paired test).

use mesa_eval::{
    auroc, auroc_delong, bootstrap_ci, brier_score, delong_test, expected_calibration_error,
    log_loss, tpr_at_fpr, BootstrapParams, Interval,
};
use serde::Serialize;

use crate::error::Result;

/// Held-out performance of the aggregate risk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judgement {
    pub n_pos: usize,
    pub n_neg: usize,
    pub auroc: f64,
    pub auroc_lo: f64,
    pub auroc_hi: f64,
    /// TPR at the threshold that gives `target_fpr` on the benign control set.
    pub tpr_at_fpr: f64,
    /// FPR on the held-out negatives at that threshold.
    pub fpr_held_out: f64,
    pub target_fpr: f64,
    pub cross_entropy: f64,
    pub cross_entropy_lo: f64,
    pub cross_entropy_hi: f64,
    pub brier: f64,
    pub ece: f64,
    /// The best single detector by held-out AUROC, with that AUROC.
    pub best_single: Option<String>,
    pub best_single_auroc: Option<f64>,
    /// Two-sided DeLong p-value of "aggregate AUROC == best single AUROC".
    pub delong_p_vs_best: Option<f64>,
}

/// Judges held-out risks.
///
/// `risk` and `labels` are the held-out models; `control` the risks of a separate benign set
/// (e.g. the training negatives) that sets the threshold for TPR at `target_fpr`; `singles`
/// each single detector's raw scores on the same held-out models, for the comparison.
///
/// # Errors
/// Any metric's error: an empty class, non-finite values, fewer than 2 per class for DeLong.
pub fn judge(
    risk: &[f64],
    labels: &[bool],
    control: &[f64],
    singles: &[(String, Vec<f64>)],
    target_fpr: f64,
    seed: u64,
) -> Result<Judgement> {
    let n_pos = labels.iter().filter(|&&l| l).count();
    let n_neg = labels.len() - n_pos;
    let delong = auroc_delong(risk, labels, 0.95)?;
    let at = tpr_at_fpr(control, risk, labels, target_fpr)?;
    let ce = bootstrap_ci(risk, labels, None, &BootstrapParams::new(seed), log_loss)?;
    let mut best: Option<(String, f64, &Vec<f64>)> = None;
    for (name, s) in singles {
        let a = auroc(s, labels)?;
        if best.as_ref().is_none_or(|(_, b, _)| a > *b) {
            best = Some((name.clone(), a, s));
        }
    }
    let delong_p = match &best {
        Some((_, _, s)) => Some(delong_test(risk, s, labels)?.p_value),
        None => None,
    };
    let Interval { estimate, lo, hi } = ce;
    Ok(Judgement {
        n_pos,
        n_neg,
        auroc: delong.auroc,
        auroc_lo: delong.lo,
        auroc_hi: delong.hi,
        tpr_at_fpr: at.tpr,
        fpr_held_out: at.fpr,
        target_fpr,
        cross_entropy: estimate,
        cross_entropy_lo: lo,
        cross_entropy_hi: hi,
        brier: brier_score(risk, labels)?,
        ece: expected_calibration_error(risk, labels, 10)?,
        best_single_auroc: best.as_ref().map(|b| b.1),
        best_single: best.map(|b| b.0),
        delong_p_vs_best: delong_p,
    })
}
