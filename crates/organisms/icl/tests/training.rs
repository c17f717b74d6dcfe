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

#[test]
fn restarts_keep_the_lowest_training_loss_and_train_the_full_steps() {
    let mut config = IclConfig::default();
    config.task.d = 3;
    config.task.n_context = 4;
    config.lsa.steps = 120;
    config.lsa.batch_size = 16;
    config.lsa.restarts = 3;
    config.lsa.restart_steps = 60;
    let o = build(Arch::Lsa, ModelKind::FewTasks, &config, 5, false).unwrap();
    assert_eq!(o.log.len(), 120);
    assert_eq!(o.restart_losses.len(), 3);
    let best = o
        .restart_losses
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    assert_eq!(o.restart_losses[o.restart], best);
    // The kept run is that restart's run: its first 60 steps end at the loss it was chosen by.
    let head: f64 = o.log[10..60].iter().map(|s| f64::from(s.loss)).sum::<f64>() / 50.0;
    assert!((head - best).abs() < 1e-9, "{head} vs {best}");
    // Same seed, same model.
    let again = build(Arch::Lsa, ModelKind::FewTasks, &config, 5, false).unwrap();
    assert_eq!(again.restart, o.restart);
    assert_eq!(again.log.last().unwrap().loss, o.log.last().unwrap().loss);
}
