//! A first look at `mesa-nn`: trains a `Tiny` transformer to reverse token lists, reports its
//! held-out exact-match accuracy, saves a checkpoint and lists the hook points with shapes.
//!
//! `cargo run -p experiments --bin reverse_demo` (about ten seconds).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use mesa_nn::{
    generate, save_checkpoint, token_sampler, train, CacheFilter, CheckpointMeta, HookPoint, Input,
    Preset, Sampling, Tiny, TokenExample, TrainConfig, Transformer, Vocab,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "Train a Tiny transformer to reverse token lists and look inside it")]
struct Args {
    /// Seed of data, weights and batch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training steps.
    #[arg(long, default_value_t = 600)]
    steps: usize,
    /// Length of the lists to reverse.
    #[arg(long, default_value_t = 4)]
    len: usize,
    /// Directory for the checkpoint.
    #[arg(long, default_value = "results/reverse_demo")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

const PAD: usize = 0;
const SEP: usize = 1;
const DIGITS: usize = 8;

fn example(rng: &mut StdRng, len: usize) -> TokenExample {
    let list: Vec<usize> = (0..len).map(|_| 2 + rng.gen_range(0..DIGITS)).collect();
    let mut tokens = list.clone();
    tokens.push(SEP);
    tokens.extend(list.iter().rev());
    let train_on = (0..tokens.len()).map(|t| t > len).collect();
    TokenExample { tokens, train_on }
}

fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.len >= 1 && args.len <= 12, "--len must be in 1..=12");
    let output = experiments::Run::start(&args.out)?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let train_set: Vec<TokenExample> = (0..2000).map(|_| example(&mut rng, args.len)).collect();
    let held_out: Vec<TokenExample> = (0..500)
        .map(|_| example(&mut rng, args.len))
        .filter(|e| !train_set.contains(e))
        .collect();
    let config = Tiny::language_model(2 + DIGITS, 2 * args.len + 1);
    let mut model = Transformer::new(config.clone(), args.seed)?;
    let train_config = TrainConfig {
        steps: args.steps,
        batch_size: 32,
        warmup_steps: 30,
        seed: args.seed,
        ..TrainConfig::default()
    };
    let start = Instant::now();
    let log = train(
        &mut model,
        &train_config,
        token_sampler(train_set.clone(), 32, PAD),
        !args.quiet,
    )?;
    let seconds = start.elapsed().as_secs_f64();

    let prompts: Vec<Vec<usize>> = held_out
        .iter()
        .map(|e| e.tokens[..=args.len].to_vec())
        .collect();
    let outputs = generate(&model, &prompts, args.len, Sampling::Greedy, None)?;
    let correct = held_out
        .iter()
        .zip(&outputs)
        .filter(|(e, out)| e.tokens[args.len + 1..] == out[..])
        .count();
    println!(
        "trained {} steps in {seconds:.1} s (final loss {:.4}); held-out exact match {}/{} = {:.1}%",
        args.steps,
        log.last().map_or(f32::NAN, |s| s.loss),
        correct,
        held_out.len(),
        100.0 * correct as f64 / held_out.len() as f64
    );

    // Token 0 pads, token 1 separates the list from its reverse, tokens 2.. are the digits.
    let words = ["<pad>", "|"]
        .into_iter()
        .map(String::from)
        .chain((0..DIGITS).map(|d| d.to_string()));
    let mut meta = CheckpointMeta::new(config, args.seed).with_vocab(&Vocab::new(words)?);
    meta.train_config = Some(train_config);
    meta.steps = args.steps;
    meta.data_hash = mesa_nn::data_hash(&train_set);
    meta.training_log = log;
    save_checkpoint(&output.dir().join("reverse_tiny"), &model, &meta)
        .with_context(|| format!("saving the checkpoint under {}", args.out.display()))?;
    output.commit()?;
    let stem = args.out.join("reverse_tiny");
    println!("checkpoint: {}.safetensors + .json", stem.display());

    let (_, cache) = model.run_with_cache(&Input::tokens(&prompts[..1])?, &CacheFilter::All)?;
    println!("hook points for one prompt of {} tokens:", args.len + 1);
    for point in HookPoint::all(model.config()) {
        let shape = cache.get(point).map(|t| t.shape()).unwrap_or_default();
        println!("  {:<28} {shape:?}", point.to_string());
    }
    Ok(())
}
