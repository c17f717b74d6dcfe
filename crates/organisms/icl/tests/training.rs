//! A tiny one-layer linear self-attention model, trained here, learns in context: it beats
//! the averaging baseline on fresh tasks.

use mesa_icl::{
    build, encode, query_predictions, sample_tasks, Arch, IclConfig, Learner, ModelKind, TaskSource,
};
use rand::{rngs::StdRng, SeedableRng};

#[test]
fn tiny_lsa_model_beats_the_averaging_baseline() {
    let mut config = IclConfig::default();
    config.task.d = 4;
    config.task.n_context = 8;
    config.lsa.steps = 400;
    config.lsa.batch_size = 64;
    let organism = build(Arch::Lsa, ModelKind::IclTrained, &config, 2, false).unwrap();
    let tasks = sample_tasks(
        &config.task,
        &TaskSource::Fresh,
        500,
        8,
        &mut StdRng::seed_from_u64(11),
    );
    let y = query_predictions(&organism.model.forward(&encode(&tasks).unwrap()).unwrap());
    let model_mse = tasks
        .iter()
        .zip(y.iter())
        .map(|(t, y)| (t.y_q - y).powi(2))
        .sum::<f64>()
        / tasks.len() as f64;
    let averaging = Learner::Averaging.mse(&tasks).unwrap();
    assert!(
        model_mse < 0.8 * averaging,
        "model {model_mse}, averaging {averaging}"
    );
}
