#![allow(dead_code)]

use mesa_goalmisgen::GoalMisgenConfig;

pub fn config() -> GoalMisgenConfig {
    GoalMisgenConfig::from_toml(
        include_str!("../../../../datasets/goal-misgen/default.toml"),
        "default.toml".as_ref(),
    )
    .expect("the shipped config is valid")
}
