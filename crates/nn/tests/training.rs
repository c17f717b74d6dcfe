//! The training loop learns: a `Tiny` model reverses short token lists.

use mesa_nn::{
    generate, token_sampler, train, with_kernel_threads, Preset, Sampling, Small, Tiny,
    TokenExample, TrainConfig, Transformer,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PAD: usize = 0;
const SEP: usize = 1;
const FIRST_DIGIT: usize = 2;
const N_DIGITS: usize = 8;
const LEN: usize = 4;

fn reversal_example(rng: &mut StdRng) -> TokenExample {
    let list: Vec<usize> = (0..LEN)
        .map(|_| FIRST_DIGIT + rng.gen_range(0..N_DIGITS))
        .collect();
    let mut tokens = list.clone();
    tokens.push(SEP);
    tokens.extend(list.iter().rev());
    let train_on = (0..tokens.len()).map(|t| t > LEN).collect();
    TokenExample { tokens, train_on }
}

#[test]
fn tiny_model_learns_to_reverse_lists() {
    let mut rng = StdRng::seed_from_u64(7);
    let train_set: Vec<TokenExample> = (0..2000).map(|_| reversal_example(&mut rng)).collect();
    let held_out: Vec<TokenExample> = (0..200)
        .map(|_| reversal_example(&mut rng))
        .filter(|e| !train_set.contains(e))
        .collect();
    let config = Tiny::language_model(FIRST_DIGIT + N_DIGITS, 2 * LEN + 1);
    let mut model = Transformer::new(config, 1).unwrap();
    let train_config = TrainConfig {
        steps: 600,
        batch_size: 32,
        lr: 3e-3,
        warmup_steps: 30,
        seed: 3,
        ..TrainConfig::default()
    };
    let log = train(
        &mut model,
        &train_config,
        token_sampler(train_set, 32, PAD),
        false,
    )
    .unwrap();
    assert_eq!(log.len(), 600);
    assert!(log
        .iter()
        .all(|s| s.loss.is_finite() && s.grad_norm.is_finite()));

    let prompts: Vec<Vec<usize>> = held_out.iter().map(|e| e.tokens[..=LEN].to_vec()).collect();
    let outputs = generate(&model, &prompts, LEN, Sampling::Greedy, None).unwrap();
    let correct = held_out
        .iter()
        .zip(&outputs)
        .filter(|(e, out)| e.tokens[LEN + 1..] == out[..])
        .count();
    let accuracy = correct as f64 / held_out.len() as f64;
    assert!(accuracy >= 0.95, "held-out exact-match accuracy {accuracy}");
}

#[test]
fn a_non_finite_loss_stops_training_naming_the_step() {
    use mesa_nn::{Input, Targets};
    use ndarray::{Array2, Array3};
    let mut model = Transformer::new(Tiny::language_model(5, 4), 0).unwrap();
    let config = TrainConfig {
        steps: 10,
        batch_size: 2,
        ..TrainConfig::default()
    };
    let err = train(
        &mut model,
        &config,
        |_, step| {
            let input = Input::tokens(&[vec![1, 2, 3], vec![2, 3, 4]])?;
            let mut values = Array3::zeros((2, 3, 5));
            if step == 3 {
                values[[0, 0, 0]] = f32::INFINITY;
            }
            Ok((
                input,
                Targets::Values {
                    values,
                    weights: Array2::ones((2, 3)),
                },
            ))
        },
        false,
    )
    .unwrap_err();
    assert!(
        matches!(err, mesa_nn::NnError::NonFiniteLoss { step: 3, .. }),
        "{err}"
    );
}

#[test]
fn same_seed_gives_identical_training() {
    let run = || {
        let mut rng = StdRng::seed_from_u64(1);
        let data: Vec<TokenExample> = (0..100).map(|_| reversal_example(&mut rng)).collect();
        let mut model = Transformer::new(Tiny::language_model(10, 9), 2).unwrap();
        let config = TrainConfig {
            steps: 20,
            batch_size: 8,
            ..TrainConfig::default()
        };
        let log = train(&mut model, &config, token_sampler(data, 8, PAD), false).unwrap();
        (log, model.named_params())
    };
    assert_eq!(run(), run());
}

/// A step with products on two threads runs on a worker of rayon's pool; the numbers must be
/// the same as on one thread, bit for bit (batch 64 x 9 makes the Linear products large enough
/// to be split).
#[test]
fn kernel_threads_do_not_change_training() {
    let run = |threads: usize| {
        with_kernel_threads(threads, || {
            let mut rng = StdRng::seed_from_u64(3);
            let data: Vec<TokenExample> = (0..200).map(|_| reversal_example(&mut rng)).collect();
            let mut model = Transformer::new(Small::language_model(10, 9), 4).unwrap();
            let config = TrainConfig {
                steps: 5,
                batch_size: 64,
                ..TrainConfig::default()
            };
            let log = train(&mut model, &config, token_sampler(data, 64, PAD), false).unwrap();
            (log, model.named_params())
        })
    };
    assert_eq!(run(1), run(2));
}
