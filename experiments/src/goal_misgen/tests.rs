use super::*;
use mesa_goalmisgen::{Level, Pos};

fn row(env: &'static str, randomization: &str, seed: u64, misgen: f64, sens: f64) -> ModelRow {
    ModelRow {
        env,
        model_id: format!("{env}-{randomization}-s{seed}"),
        seed,
        randomization: randomization.into(),
        randomization_value: randomization.parse().unwrap_or(7.0),
        train_success: 1.0,
        train_success_lo: 0.96,
        train_success_hi: 1.0,
        test_true_goal_rate: 1.0 - misgen,
        test_proxy_rate: misgen,
        test_neither_rate: 0.0,
        misgen_rate: Some(misgen),
        misgen_lo: None,
        misgen_hi: None,
        expert_test_true_goal_rate: 1.0,
        goal_sensitivity: sens,
        goal_probe_excess: 0.0,
        episodes: 100,
        train_steps: 500,
        final_train_loss: 0.0,
        train_seconds: 1.0,
        total_seconds: 1.0,
    }
}

#[test]
fn nearest_chest_is_the_keys_goal_cell() {
    let level = Level {
        kind: EnvKind::KeysChests,
        width: 5,
        height: 5,
        walls: vec![false; 25],
        start: Pos::new(0, 0),
        goal: None,
        proxy: None,
        keys: vec![Pos::new(4, 4)],
        chests: vec![Pos::new(4, 0), Pos::new(1, 1), Pos::new(0, 3)],
    };
    let episode = Episode::new(level, 40);
    assert_eq!(goal_cell(&episode), Some(Pos::new(1, 1)));
}

#[test]
fn predictor_has_per_setting_rows_only_with_enough_models_and_ranks_the_signal() {
    // Corridor 0%: 4 seeds, misgeneralizing exactly when insensitive to the goal; corridor
    // 25%: 3 seeds, none misgeneralizing (too few for a per-setting row).
    let mut rows: Vec<ModelRow> = (0..4)
        .map(|s| {
            let misgen = if s < 2 { 0.9 } else { 0.1 };
            row("corridor", "0", s, misgen, 0.1 + 0.2 * s as f64)
        })
        .collect();
    rows.extend((0..3).map(|s| row("corridor", "25", s, 0.0, 0.9)));
    let table = predictor_rows(&rows).unwrap();
    let groups: Vec<&str> = table.iter().map(|r| r.group.as_str()).collect();
    assert!(groups.contains(&"all") && groups.contains(&"corridor"));
    assert!(groups.contains(&"corridor r0"));
    assert!(!groups.contains(&"corridor r25"));
    let within = table
        .iter()
        .find(|r| {
            r.group == "corridor r0" && r.signal == "goal_sensitivity" && r.target == "misgen_rate"
        })
        .unwrap();
    assert_eq!((within.n_models, within.n_positive), (4, 2));
    assert_eq!(within.auroc, Some(1.0));
    assert!(within.spearman.unwrap() < -0.8);
    // The probe excess is constant here: no Spearman, and an AUROC of ties (0.5).
    let probe = table
        .iter()
        .find(|r| r.group == "corridor r0" && r.signal == "goal_probe_excess")
        .unwrap();
    assert_eq!(probe.spearman, None);
    assert_eq!(probe.auroc, Some(0.5));
}

#[test]
fn band_is_mean_min_max_per_randomization_in_order() {
    let rows = [
        row("maze", "3", 0, 0.2, 0.0),
        row("maze", "1", 0, 1.0, 0.0),
        row("maze", "3", 1, 0.6, 0.0),
    ];
    let refs: Vec<&ModelRow> = rows.iter().collect();
    let series = band(&refs, |r| r.misgen_rate).unwrap();
    assert_eq!(series.x, vec![1.0, 3.0]);
    assert!((series.y[1] - 0.4).abs() < 1e-12);
    assert_eq!(series.band, Some((vec![1.0, 0.2], vec![1.0, 0.6])));
}
