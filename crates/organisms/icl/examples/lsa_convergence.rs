//! How often the one-layer LSA model escapes the initial plateau: trains the icl-trained LSA of
//! `datasets/icl/default.toml`'s defaults for `count` seeds from `first`, with the given number
//! of restarts, and prints each run's final training loss (raw MSE; the task scale is `d`).
//!
//! `cargo run --release -p mesa-icl --example lsa_convergence -- [restarts] [first] [count]`
//! (defaults 3 10 40: seeds 10..49, which the experiment's seeds 0..4 do not overlap).

use mesa_icl::{build, Arch, IclConfig, ModelKind};

fn arg<T: std::str::FromStr>(i: usize, default: T) -> Result<T, String> {
    match std::env::args().nth(i) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("argument {i} (`{v}`) is not a number")),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let restarts: usize = arg(1, 3)?;
    let first: u64 = arg(2, 10)?;
    let count: u64 = arg(3, 40)?;
    let mut config = IclConfig::default();
    config.lsa.restarts = restarts;
    config.validate()?;
    // The plateau sits near the task scale d (predicting ~0); one-step GD reaches about half.
    let plateau = 0.8 * config.task.d as f64;
    let mut stalled = 0;
    for seed in first..first + count {
        let o = build(Arch::Lsa, ModelKind::IclTrained, &config, seed, false)?;
        let tail = &o.log[o.log.len().saturating_sub(50)..];
        let loss = tail.iter().map(|s| f64::from(s.loss)).sum::<f64>() / tail.len() as f64;
        stalled += usize::from(loss > plateau);
        let starts: Vec<String> = o.restart_losses.iter().map(|l| format!("{l:.2}")).collect();
        println!(
            "seed {seed}: final training loss {loss:.3}; kept restart {} of [{}]",
            o.restart,
            starts.join(", ")
        );
    }
    println!("{stalled} of {count} runs ended on the plateau (training loss > {plateau})");
    Ok(())
}
