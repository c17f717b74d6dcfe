//! Configs with impossible values are refused with an error naming the file and the field.

use std::path::Path;

use mesa_icl::{ConfigFileError, IclConfig, IclError};

const GOOD: &str = include_str!("../../../../datasets/icl/default.toml");

fn refuse(from: &str, to: &str, field: &str) {
    assert!(GOOD.contains(from), "the default config has no `{from}`");
    let text = GOOD.replace(from, to);
    let path = Path::new("datasets/icl/bad.toml");
    let err = IclConfig::from_toml(&text, path).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("datasets/icl/bad.toml"), "{msg}");
    assert!(msg.contains(field), "{msg} does not name {field}");
}

#[test]
fn the_default_config_loads_and_matches_the_builtin_default() {
    let config = IclConfig::from_toml(GOOD, Path::new("default.toml")).unwrap();
    assert_eq!(config, IclConfig::default());
}

#[test]
fn zero_dimension_is_refused() {
    refuse("d = 10 ", "d = 0 ", "task.d");
}

#[test]
fn zero_context_is_refused() {
    refuse("n_context = 10", "n_context = 0", "task.n_context");
}

#[test]
fn negative_noise_is_refused() {
    refuse("noise_std = 0.0", "noise_std = -0.1", "task.noise_std");
}

#[test]
fn zero_restarts_or_restart_steps_beyond_steps_are_refused() {
    refuse("restarts = 3", "restarts = 0", "lsa.restarts");
    refuse(
        "restart_steps = 300",
        "restart_steps = 3000",
        "lsa.restart_steps",
    );
}

#[test]
fn unknown_keys_and_missing_files_are_errors() {
    refuse("[task]", "[task]\nwidth = 3", "width");
    let err = IclConfig::load(Path::new("/nonexistent/icl.toml")).unwrap_err();
    assert!(
        matches!(err, IclError::Config(ConfigFileError::Io { .. })),
        "{err}"
    );
}
