//! Configs are validated on load, with errors that name the file and the field.

use mesa_goalmisgen::{ConfigFileError, GoalMisgenConfig, GoalMisgenError, Region};

const DEFAULT: &str = include_str!("../../../../datasets/goal-misgen/default.toml");

fn load(text: &str) -> Result<GoalMisgenConfig, GoalMisgenError> {
    GoalMisgenConfig::from_toml(text, "cfg.toml".as_ref())
}

#[test]
fn shipped_config_loads_with_the_issue_sweeps() {
    let config = load(DEFAULT).unwrap();
    assert_eq!(
        config.maze.regions,
        vec![
            Region::Side(1),
            Region::Side(2),
            Region::Side(3),
            Region::Side(5),
            Region::FULL
        ]
    );
    assert_eq!(
        config.corridor.random_percents,
        vec![0.0, 2.0, 5.0, 10.0, 25.0]
    );
    assert!(config.seeds_per_setting >= 3);
    assert_eq!(config.keys_chests.train_steps, Some(1500));
}

#[test]
fn seed_variation_config_loads() {
    let text = include_str!("../../../../datasets/goal-misgen/seed-variation.toml");
    let config = load(text).unwrap();
    assert_eq!(config.seeds_per_setting, 12);
    assert_eq!(config.maze.regions, vec![Region::Side(3), Region::Side(4)]);
}

#[test]
fn train_steps_override_must_exceed_warmup() {
    let text = DEFAULT.replace("train_steps = 1500", "train_steps = 10");
    let err = load(&text).unwrap_err().to_string();
    assert!(err.contains("keys_chests.train_steps"), "{err}");
}

#[test]
fn bad_value_names_file_and_field() {
    let err = load(&DEFAULT.replace("size = 7", "size = 8")).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("cfg.toml") && msg.contains("maze.size"),
        "{msg}"
    );
    let err =
        load(&DEFAULT.replace("regions = [1, 2, 3, 5, \"full\"]", "regions = [0]")).unwrap_err();
    assert!(err.to_string().contains("maze.regions"), "{err}");
    let err = load(&DEFAULT.replace("test_keys = [3, 4]", "test_keys = [4, 3]")).unwrap_err();
    assert!(err.to_string().contains("keys_chests.test_keys"), "{err}");
}

#[test]
fn unknown_field_and_bad_region_word_are_parse_errors_naming_the_file() {
    let err = load(&format!("{DEFAULT}\nextra = 1\n")).unwrap_err();
    assert!(matches!(
        err,
        GoalMisgenError::Config(ConfigFileError::Parse { .. })
    ));
    assert!(err.to_string().contains("cfg.toml") && err.to_string().contains("extra"));
    let err = load(&DEFAULT.replace("\"full\"", "\"everywhere\"")).unwrap_err();
    assert!(
        matches!(err, GoalMisgenError::Config(ConfigFileError::Parse { .. })),
        "{err}"
    );
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = GoalMisgenConfig::load("no/such/goal.toml".as_ref()).unwrap_err();
    assert!(err.to_string().contains("no/such/goal.toml"));
}
