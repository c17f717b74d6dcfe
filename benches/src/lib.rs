//! Shared inputs for the criterion benchmarks in `benches/`.
//!
//! Run them with `cargo bench -p mesa-benches`. The benchmark shape is the issue's: `Small`
//! (2 layers, d_model 64, 4 heads, MLP 256), batch 64 x 32 tokens.

use mesa_nn::{Input, Targets};
use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const BATCH: usize = 64;
pub const SEQ: usize = 32;
pub const VOCAB: usize = 32;

/// A seeded random next-token batch of the benchmark shape.
pub fn random_batch(seed: u64) -> (Input, Targets) {
    let mut rng = StdRng::seed_from_u64(seed);
    let tokens = Array2::from_shape_fn((BATCH, SEQ), |_| rng.gen_range(0..VOCAB));
    let ids = Array2::from_shape_fn((BATCH, SEQ), |_| rng.gen_range(0..VOCAB));
    (
        Input::Tokens(tokens),
        Targets::Classes {
            ids,
            weights: Array2::ones((BATCH, SEQ)),
        },
    )
}
