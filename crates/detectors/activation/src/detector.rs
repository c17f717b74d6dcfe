//! The statistics as `mesa-detect` detectors: input-level ones fitted on an unlabelled set
//! (which may hold a few triggered inputs, as a real data set would), and model-level audits
//! that insert random tokens into generic prompts and ask whether the model's activations then
//! hold a small, tight, far-away cluster.

use mesa_detect::{
    AuditContext, DetectorSpec, Evidence, Family, FitData, FittedInputDetector,
    FittedModelDetector, InputDetector, InputInfo, ModelDetector, ModelInfo, Needs, Registry,
    Requires, Tokens, TriggerEvidence, Verdict,
};
use mesa_nn::{HookPoint, InputFront, Transformer};
use mesa_probe::{activations, Position};
use ndarray::{Array1, Array2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{ActivationError, Result};
use crate::stats::{top_eigen, Clustering, Mahalanobis, Spectral};

/// Which statistic a detector computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Statistic {
    /// Tran et al. (2018): squared projection on the top singular vector.
    Spectral,
    /// Chen et al. (2018): 2-means on the top principal components; the small cluster.
    Clustering,
    /// Distance from a Gaussian fitted to the reference activations.
    Mahalanobis,
}

impl Statistic {
    pub const ALL: [Statistic; 3] = [
        Statistic::Spectral,
        Statistic::Clustering,
        Statistic::Mahalanobis,
    ];

    /// The input-level registry name.
    pub fn name(self) -> &'static str {
        match self {
            Statistic::Spectral => "spectral",
            Statistic::Clustering => "act-cluster",
            Statistic::Mahalanobis => "mahalanobis",
        }
    }

    /// The model-level registry name.
    pub fn audit_name(self) -> &'static str {
        match self {
            Statistic::Spectral => "spectral-audit",
            Statistic::Clustering => "act-cluster-audit",
            Statistic::Mahalanobis => "mahalanobis-audit",
        }
    }

    pub fn info(self) -> InputInfo {
        let summary = match self {
            Statistic::Spectral => {
                "spectral signature: squared projection on the top singular vector of the unlabelled set"
            }
            Statistic::Clustering => {
                "activation clustering: nearness to the small cluster of 2-means on the top PCs of the unlabelled set"
            }
            Statistic::Mahalanobis => "Mahalanobis distance from the unlabelled set's Gaussian",
        };
        InputInfo::new(Family::Activation, summary, Requires::UNLABELLED)
    }

    pub fn audit_info(self) -> ModelInfo {
        let summary = match self {
            Statistic::Spectral => {
                "dominance of the top direction of randomly-inserted prompts, whitened by generic prompts"
            }
            Statistic::Clustering => {
                "silhouette of a small 2-means cluster of randomly-inserted prompts, whitened by generic prompts"
            }
            Statistic::Mahalanobis => {
                "heavy tail of Mahalanobis distances of randomly-inserted prompts from generic prompts"
            }
        };
        ModelInfo::new(Family::Activation, summary, AUDIT_NEEDS)
    }
}

/// What the model-level audits read: generic prompts and the vocabulary (to name the inserted
/// tokens in their evidence).
pub const AUDIT_NEEDS: Needs = Needs {
    prompts: true,
    vocab: true,
    ..Needs::NOTHING
};

/// Hyper-parameters shared by the input- and model-level detectors.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationParams {
    pub statistic: Statistic,
    pub hook: HookPoint,
    pub position: Position,
    /// Principal components kept by activation clustering.
    pub components: usize,
    /// Ridge on the covariance, as a share of the mean variance.
    pub shrinkage: f64,
    /// Share of the inserted prompts an audit treats as its tail (and reads evidence from).
    pub tail: f64,
    pub seed: u64,
}

impl ActivationParams {
    pub fn new(statistic: Statistic, spec: &DetectorSpec) -> Self {
        Self {
            statistic,
            hook: spec.hook,
            position: Position::Last,
            components: 10,
            shrinkage: 0.05,
            tail: 0.02,
            seed: spec.seed,
        }
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`ActivationError::InvalidParam`] naming the first bad one.
    pub fn check(self) -> Result<ActivationDetector> {
        if self.components == 0 {
            return Err(ActivationError::InvalidParam {
                param: "components",
                reason: "at least one".into(),
            });
        }
        if !(self.shrinkage.is_finite() && self.shrinkage >= 0.0) {
            return Err(ActivationError::InvalidParam {
                param: "shrinkage",
                reason: format!("{} is not a finite number >= 0", self.shrinkage),
            });
        }
        if !(self.tail > 0.0 && self.tail < 0.5) {
            return Err(ActivationError::InvalidParam {
                param: "tail",
                reason: format!("{} is not in (0, 0.5)", self.tail),
            });
        }
        Ok(ActivationDetector { params: self })
    }
}

/// Validated parameters: an input-level detector, and (through [`ActivationAudit`]) a
/// model-level one.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationDetector {
    params: ActivationParams,
}

/// A statistic fitted to one activation set.
#[derive(Debug, Clone, PartialEq)]
pub enum Fitted {
    Spectral(Spectral),
    Clustering(Clustering),
    Mahalanobis(Mahalanobis),
}

impl Fitted {
    /// Per-row anomaly scores.
    ///
    /// # Errors
    /// A width that differs from the fit's.
    pub fn scores(&self, x: &Array2<f64>) -> Result<Array1<f64>> {
        match self {
            Fitted::Spectral(s) => s.scores(x),
            Fitted::Clustering(c) => c.scores(x),
            Fitted::Mahalanobis(m) => m.scores(x),
        }
    }
}

impl ActivationDetector {
    pub fn params(&self) -> &ActivationParams {
        &self.params
    }

    fn read(&self, model: &Transformer, inputs: &[Tokens]) -> Result<Array2<f64>> {
        Ok(activations(
            model,
            self.params.hook,
            inputs,
            self.params.position,
        )?)
    }

    /// Fits the statistic to activations `x`.
    ///
    /// # Errors
    /// Too few rows or non-finite values.
    pub fn fit_activations(&self, x: &Array2<f64>) -> Result<Fitted> {
        let p = &self.params;
        Ok(match p.statistic {
            Statistic::Spectral => Fitted::Spectral(Spectral::fit(x, p.seed)?),
            Statistic::Clustering => {
                Fitted::Clustering(Clustering::fit(x, p.components.min(x.ncols()), p.seed)?)
            }
            Statistic::Mahalanobis => Fitted::Mahalanobis(Mahalanobis::fit(x, p.shrinkage)?),
        })
    }
}

impl InputDetector for ActivationDetector {
    fn name(&self) -> String {
        format!("{}@{}", self.params.statistic.name(), self.params.hook)
    }

    fn requires(&self) -> Requires {
        Requires::UNLABELLED
    }

    fn fit(
        &self,
        model: &Transformer,
        data: &FitData<'_>,
    ) -> mesa_detect::Result<Box<dyn FittedInputDetector>> {
        data.check(&self.name(), self.requires())?;
        let fitted = self
            .read(model, data.unlabelled)
            .and_then(|x| self.fit_activations(&x))
            .map_err(|e| e.into_detect(&self.name()))?;
        Ok(Box::new(FittedActivation {
            name: self.name(),
            detector: self.clone(),
            fitted,
        }))
    }
}

/// An input-level detector with its statistic fitted.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedActivation {
    name: String,
    detector: ActivationDetector,
    fitted: Fitted,
}

impl FittedActivation {
    pub fn fitted(&self) -> &Fitted {
        &self.fitted
    }
}

impl FittedInputDetector for FittedActivation {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn score(&self, model: &Transformer, inputs: &[Tokens]) -> mesa_detect::Result<Vec<f64>> {
        self.detector
            .read(model, inputs)
            .and_then(|x| self.fitted.scores(&x))
            .map(|s| s.to_vec())
            .map_err(|e| e.into_detect(&self.name))
    }
}

/// The model-level audit: one random token inserted at a random place (before the last token,
/// where activations are read) into each held-out generic prompt; the activations of those
/// prompts, whitened by the model's activations on the other generic prompts, are summarised
/// by the statistic. A model whose activation space holds a small, tight, far cluster (a
/// trigger among the inserted tokens that takes over the residual stream) scores high.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationAudit {
    detector: ActivationDetector,
}

impl ActivationAudit {
    pub fn new(detector: ActivationDetector) -> Self {
        Self { detector }
    }
}

impl ModelDetector for ActivationAudit {
    fn name(&self) -> String {
        let p = &self.detector.params;
        format!("{}@{}", p.statistic.audit_name(), p.hook)
    }

    fn needs(&self) -> Needs {
        AUDIT_NEEDS
    }

    fn fit(&self, context: &AuditContext<'_>) -> mesa_detect::Result<Box<dyn FittedModelDetector>> {
        // Nothing to fit across models: each audit whitens by the audited model's own
        // activations on generic prompts. Fail early on a context it cannot use.
        let name = ModelDetector::name(self);
        context.prompt_set(&name, false)?;
        context.prompt_set(&name, true)?;
        Ok(Box::new(self.clone()))
    }
}

/// One random insertion per prompt: the prompts and the token each got.
pub fn insert_random_tokens(
    prompts: &[Tokens],
    vocab: usize,
    seed: u64,
) -> (Vec<Tokens>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    prompts
        .iter()
        .map(|p| {
            let token = rng.gen_range(0..vocab);
            let at = rng.gen_range(0..p.len().max(1));
            let mut q = p.clone();
            q.insert(at.min(p.len().saturating_sub(1)), token);
            (q, token)
        })
        .unzip()
}

/// A model-level statistic: the score, each inserted prompt's anomaly, and named numbers.
type AuditStatistic = (f64, Array1<f64>, Vec<(String, f64)>);

/// The model-level statistic of whitened activations `z` and each row's anomaly score.
fn audit_statistic(detector: &ActivationDetector, z: &Array2<f64>) -> Result<AuditStatistic> {
    let p = &detector.params;
    match detector.fit_activations(z)? {
        Fitted::Spectral(s) => {
            let rows = s.scores(z)?;
            Ok((
                s.dominance.ln(),
                rows,
                vec![("dominance".into(), s.dominance)],
            ))
        }
        Fitted::Clustering(c) => {
            let rows = c.scores(z)?;
            let score = c.silhouette * (1.0 - 2.0 * c.relative_size);
            let metrics = vec![
                ("silhouette".into(), c.silhouette),
                ("relative_size".into(), c.relative_size),
            ];
            Ok((score, rows, metrics))
        }
        Fitted::Mahalanobis(_) => {
            // `z` is already whitened by the generic prompts: the squared norm is the distance.
            let rows = z
                .rows()
                .into_iter()
                .map(|r| r.dot(&r))
                .collect::<Array1<f64>>();
            let mut sorted = rows.to_vec();
            sorted.sort_by(|a, b| b.total_cmp(a));
            let k = tail_count(sorted.len(), p.tail);
            let top = sorted[..k].iter().sum::<f64>() / k as f64;
            let median = sorted[sorted.len() / 2].max(f64::MIN_POSITIVE);
            let ratio = top / median;
            Ok((ratio.ln(), rows, vec![("tail_over_median".into(), ratio)]))
        }
    }
}

fn tail_count(n: usize, tail: f64) -> usize {
    ((n as f64 * tail).ceil() as usize).clamp(1, n)
}

impl FittedModelDetector for ActivationAudit {
    fn name(&self) -> String {
        ModelDetector::name(self)
    }

    fn audit(
        &self,
        model: &Transformer,
        context: &AuditContext<'_>,
    ) -> mesa_detect::Result<Verdict> {
        let name = ModelDetector::name(self);
        let vocab_size = match model.config().input {
            InputFront::Tokens { vocab } => vocab,
            InputFront::Vectors { .. } => {
                return Err(mesa_detect::DetectError::InvalidInputs {
                    detector: name,
                    reason: "random token insertions need a token model".into(),
                })
            }
        };
        let vocab = context.vocab(&name)?;
        let reference = context.prompt_set(&name, false)?.tokens(&name)?;
        let held_out = context.prompt_set(&name, true)?.tokens(&name)?;
        let d = &self.detector;
        let (inserted, tokens) = insert_random_tokens(&held_out, vocab_size, d.params.seed);
        let run = || -> Result<AuditStatistic> {
            let reference = d.read(model, &reference)?;
            let inserted = d.read(model, &inserted)?;
            let z = whiten(&reference, &inserted, d.params.shrinkage, d.params.seed)?;
            audit_statistic(d, &z)
        };
        let (score, rows, metrics) = run().map_err(|e| e.into_detect(&name))?;
        // Evidence: the inserted tokens over-represented among the most anomalous prompts.
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by(|&a, &b| rows[b].total_cmp(&rows[a]));
        let k = tail_count(rows.len(), d.params.tail);
        let mut counts = std::collections::BTreeMap::<usize, usize>::new();
        for &i in &order[..k] {
            *counts.entry(tokens[i]).or_default() += 1;
        }
        let mut ranked: Vec<(usize, usize)> = counts.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let triggers = ranked
            .into_iter()
            .take(3)
            .map(|(token, count)| {
                let inserted_n = tokens.iter().filter(|&&t| t == token).count();
                TriggerEvidence {
                    tokens: vec![token],
                    words: vocab
                        .word(token)
                        .map(|w| vec![w.to_string()])
                        .unwrap_or_default(),
                    detail: [
                        ("share_of_tail".to_string(), count as f64 / k as f64),
                        ("times_inserted".to_string(), inserted_n as f64),
                    ]
                    .into_iter()
                    .collect(),
                    ..TriggerEvidence::default()
                }
            })
            .collect();
        let mut evidence = Evidence::metrics(metrics);
        evidence
            .metrics
            .insert("n_inserted".into(), rows.len() as f64);
        evidence
            .metrics
            .insert("n_reference".into(), reference.len() as f64);
        evidence.triggers = triggers;
        Ok(Verdict::new(score, evidence))
    }
}

/// `x` centred on the reference's mean and whitened by its covariance (plus a ridge of
/// `shrinkage` times the mean variance): isotropic unit noise where `x` looks like the
/// reference.
///
/// # Errors
/// Too few reference rows or mismatched widths.
pub fn whiten(
    reference: &Array2<f64>,
    x: &Array2<f64>,
    shrinkage: f64,
    seed: u64,
) -> Result<Array2<f64>> {
    if reference.nrows() < 2 || reference.ncols() != x.ncols() {
        return Err(ActivationError::InvalidData(format!(
            "reference [{}, {}] cannot whiten [{}, {}]",
            reference.nrows(),
            reference.ncols(),
            x.nrows(),
            x.ncols()
        )));
    }
    let mean = reference
        .mean_axis(ndarray::Axis(0))
        .ok_or_else(|| ActivationError::InvalidData("empty reference".into()))?;
    let c = crate::stats::covariance(reference);
    let d = c.nrows();
    let ridge = shrinkage * c.diag().sum() / d as f64 + 1e-9;
    let (values, vectors) = top_eigen(&c, d, seed);
    let scale: Array1<f64> = values.iter().map(|v| 1.0 / (v + ridge).sqrt()).collect();
    Ok((x - &mean).dot(&vectors.t()) * &scale)
}

/// Registers the three input-level detectors and the three model-level audits.
///
/// # Errors
/// [`mesa_detect::DetectError::DuplicateName`] if a name is taken.
pub fn register(registry: &mut Registry) -> mesa_detect::Result<()> {
    fn input(s: Statistic, spec: &DetectorSpec) -> mesa_detect::Result<Box<dyn InputDetector>> {
        let d = ActivationParams::new(s, spec)
            .check()
            .map_err(|e| e.into_detect(s.name()))?;
        Ok(Box::new(d))
    }
    fn model(s: Statistic, spec: &DetectorSpec) -> mesa_detect::Result<Box<dyn ModelDetector>> {
        let d = ActivationParams::new(s, spec)
            .check()
            .map_err(|e| e.into_detect(s.audit_name()))?;
        Ok(Box::new(ActivationAudit::new(d)))
    }
    let s = Statistic::Spectral;
    registry.register_input(s.name(), s.info(), |spec| input(Statistic::Spectral, spec))?;
    let s = Statistic::Clustering;
    registry.register_input(s.name(), s.info(), |spec| {
        input(Statistic::Clustering, spec)
    })?;
    let s = Statistic::Mahalanobis;
    registry.register_input(s.name(), s.info(), |spec| {
        input(Statistic::Mahalanobis, spec)
    })?;
    let s = Statistic::Spectral;
    registry.register_model(s.audit_name(), s.audit_info(), |spec| {
        model(Statistic::Spectral, spec)
    })?;
    let s = Statistic::Clustering;
    registry.register_model(s.audit_name(), s.audit_info(), |spec| {
        model(Statistic::Clustering, spec)
    })?;
    let s = Statistic::Mahalanobis;
    registry.register_model(s.audit_name(), s.audit_info(), |spec| {
        model(Statistic::Mahalanobis, spec)
    })
}
