//! A tiny policy trained here by behaviour cloning solves a fixed small maze.

mod common;

use mesa_goalmisgen::{obs, EnvSpec, Episode, Outcome, Region, Split};
use mesa_nn::{Hooks, Input, Preset, Targets, Tiny, TrainConfig, Transformer};
use ndarray::Array2;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

#[test]
fn tiny_policy_trained_by_behaviour_cloning_solves_a_fixed_small_maze() {
    let mut config = common::config().maze;
    config.size = 5;
    let spec = EnvSpec::Maze {
        config,
        region: Region::FULL,
    };
    let level = spec
        .generate(Split::Test, &mut StdRng::seed_from_u64(11))
        .unwrap();
    let goal = level.goal.unwrap();
    let n = level.n_cells();
    // Every state of this one maze: the agent on each free cell, labelled by the planner.
    let states: Vec<(Vec<usize>, usize)> = level
        .open_cells()
        .into_iter()
        .filter(|&p| p != goal && Some(p) != level.proxy)
        .map(|p| {
            let mut e = Episode::new(level.clone(), 50);
            e.agent = p;
            let action = e.expert_action().expect("connected maze").index();
            (obs::observe(&e, obs::Mask::default()), action)
        })
        .collect();
    let mut model_config = Tiny::language_model(obs::vocab_size(n), obs::seq_len(n));
    model_config.d_out = 4;
    let mut model = Transformer::new(model_config, 0).unwrap();
    let train = TrainConfig {
        steps: 150,
        batch_size: 16,
        warmup_steps: 10,
        seed: 0,
        ..TrainConfig::default()
    };
    let (seq, q) = (obs::seq_len(n), obs::query_position(n));
    mesa_nn::train(
        &mut model,
        &train,
        |rng: &mut StdRng, _| {
            let batch: Vec<_> = states.choose_multiple(rng, 16).collect();
            let mut ids = Array2::zeros((batch.len(), seq));
            let mut weights = Array2::zeros((batch.len(), seq));
            for (b, (_, a)) in batch.iter().enumerate() {
                ids[[b, q]] = *a;
                weights[[b, q]] = 1.0;
            }
            let tokens: Vec<Vec<usize>> = batch.iter().map(|(t, _)| t.clone()).collect();
            Ok((Input::tokens(&tokens)?, Targets::Classes { ids, weights }))
        },
        false,
    )
    .unwrap();
    let mut episodes = vec![Episode::new(level.clone(), 50)];
    mesa_goalmisgen::rollout(&model, &mut episodes, &Hooks::new()).unwrap();
    let e = &episodes[0];
    assert_eq!(e.outcome(), Some(Outcome::TrueGoal), "path {:?}", e.path);
    let shortest = level.distances_from(level.start)[level.index(goal)].unwrap();
    assert_eq!(e.steps, shortest, "the policy took a detour: {:?}", e.path);
}
