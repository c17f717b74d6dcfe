//! Validated hyper-parameters of each probe, linfa style: `XParams` is a builder, checked once
//! by [`ParamGuard`] into `XValidParams`, which fits (linfa's blanket `Fit` impl runs the check).

use linfa::ParamGuard;

use crate::error::ProbeError;

/// Logistic regression on standardised features, its L2 strength chosen on a validation split.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticProbeParams(LogisticProbeValidParams);

/// Checked [`LogisticProbeParams`].
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticProbeValidParams {
    pub(crate) alphas: Vec<f64>,
    pub(crate) validation_fraction: f64,
    pub(crate) max_iterations: u64,
    pub(crate) seed: u64,
}

impl LogisticProbeParams {
    /// Defaults: L2 strengths 1e-3 .. 1e2 (one per decade), a quarter of the training data held
    /// out (stratified) to choose among them, 200 L-BFGS iterations.
    pub fn new(seed: u64) -> Self {
        Self(LogisticProbeValidParams {
            alphas: vec![1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0],
            validation_fraction: 0.25,
            max_iterations: 200,
            seed,
        })
    }

    /// The candidate L2 strengths (linfa-logistic's `alpha`). One candidate skips validation.
    pub fn alphas(mut self, alphas: Vec<f64>) -> Self {
        self.0.alphas = alphas;
        self
    }

    pub fn validation_fraction(mut self, fraction: f64) -> Self {
        self.0.validation_fraction = fraction;
        self
    }

    pub fn max_iterations(mut self, iterations: u64) -> Self {
        self.0.max_iterations = iterations;
        self
    }
}

impl LogisticProbeValidParams {
    pub fn alphas(&self) -> &[f64] {
        &self.alphas
    }
    pub fn validation_fraction(&self) -> f64 {
        self.validation_fraction
    }
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

impl ParamGuard for LogisticProbeParams {
    type Checked = LogisticProbeValidParams;
    type Error = ProbeError;

    fn check_ref(&self) -> Result<&Self::Checked, ProbeError> {
        let p = &self.0;
        if p.alphas.is_empty() || p.alphas.iter().any(|a| !(a.is_finite() && *a >= 0.0)) {
            return Err(ProbeError::InvalidParam {
                param: "alphas",
                reason: format!("need at least one finite value >= 0, got {:?}", p.alphas),
            });
        }
        if !(p.validation_fraction > 0.0 && p.validation_fraction < 1.0) {
            return Err(ProbeError::InvalidParam {
                param: "validation_fraction",
                reason: format!("{} is outside (0, 1)", p.validation_fraction),
            });
        }
        if p.max_iterations == 0 {
            return Err(ProbeError::InvalidParam {
                param: "max_iterations",
                reason: "must be at least 1".into(),
            });
        }
        Ok(p)
    }

    fn check(self) -> Result<Self::Checked, ProbeError> {
        self.check_ref()?;
        Ok(self.0)
    }
}

/// The direction between the class means; with `covariance_adjusted`, whitened by the pooled
/// within-class covariance (Fisher's LDA direction), shrunk towards a scaled identity.
#[derive(Debug, Clone, PartialEq)]
pub struct MeanDiffParams(MeanDiffValidParams);

/// Checked [`MeanDiffParams`].
#[derive(Debug, Clone, PartialEq)]
pub struct MeanDiffValidParams {
    pub(crate) covariance_adjusted: bool,
    pub(crate) shrinkage: f64,
}

impl MeanDiffParams {
    /// The plain difference of class means.
    pub fn new() -> Self {
        Self(MeanDiffValidParams {
            covariance_adjusted: false,
            shrinkage: 0.1,
        })
    }

    /// The LDA-like form: `(S + ...)^-1 (mu_pos - mu_neg)`, shrinkage 0.1 by default.
    pub fn lda() -> Self {
        Self::new().covariance_adjusted(true)
    }

    pub fn covariance_adjusted(mut self, adjusted: bool) -> Self {
        self.0.covariance_adjusted = adjusted;
        self
    }

    /// Ledoit-Wolf-style shrinkage `g` in [0, 1]: `(1 - g) S + g (tr S / d) I`.
    pub fn shrinkage(mut self, shrinkage: f64) -> Self {
        self.0.shrinkage = shrinkage;
        self
    }
}

impl Default for MeanDiffParams {
    fn default() -> Self {
        Self::new()
    }
}

impl ParamGuard for MeanDiffParams {
    type Checked = MeanDiffValidParams;
    type Error = ProbeError;

    fn check_ref(&self) -> Result<&Self::Checked, ProbeError> {
        if !(0.0..=1.0).contains(&self.0.shrinkage) {
            return Err(ProbeError::InvalidParam {
                param: "shrinkage",
                reason: format!("{} is outside [0, 1]", self.0.shrinkage),
            });
        }
        Ok(&self.0)
    }

    fn check(self) -> Result<Self::Checked, ProbeError> {
        self.check_ref()?;
        Ok(self.0)
    }
}

/// The top principal direction of a matrix, found by power iteration: of paired differences
/// (LAT, uncentred) or of unlabelled activations (centred).
#[derive(Debug, Clone, PartialEq)]
pub struct PcaDirectionParams(PcaDirectionValidParams);

/// Checked [`PcaDirectionParams`].
#[derive(Debug, Clone, PartialEq)]
pub struct PcaDirectionValidParams {
    pub(crate) centred: bool,
    pub(crate) iterations: usize,
    pub(crate) seed: u64,
}

impl PcaDirectionParams {
    /// LAT (Zou et al. 2023, representation engineering): the first principal component of
    /// paired differences `a(positive) - a(negative)`, taken about zero rather than about their
    /// mean (their mean is the contrast direction itself), oriented so the positive member of a
    /// pair scores higher. Fit on a dataset whose records are the differences.
    pub fn lat(seed: u64) -> Self {
        Self(PcaDirectionValidParams {
            centred: false,
            iterations: 500,
            seed,
        })
    }

    /// The first principal component of unlabelled activations, centred. Its sign is not
    /// identifiable without labels: it is fixed so the component's largest entry is positive,
    /// so an AUROC far *below* 0.5 also means the component separates the classes.
    pub fn top_pc(seed: u64) -> Self {
        Self(PcaDirectionValidParams {
            centred: true,
            iterations: 500,
            seed,
        })
    }

    pub fn iterations(mut self, iterations: usize) -> Self {
        self.0.iterations = iterations;
        self
    }
}

impl ParamGuard for PcaDirectionParams {
    type Checked = PcaDirectionValidParams;
    type Error = ProbeError;

    fn check_ref(&self) -> Result<&Self::Checked, ProbeError> {
        if self.0.iterations == 0 {
            return Err(ProbeError::InvalidParam {
                param: "iterations",
                reason: "must be at least 1".into(),
            });
        }
        Ok(&self.0)
    }

    fn check(self) -> Result<Self::Checked, ProbeError> {
        self.check_ref()?;
        Ok(self.0)
    }
}
