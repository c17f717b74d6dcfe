//! Seeded fuzzing of the loaders: thousands of truncated and mutated checkpoints and TOML
//! configs, each of which must give an error (or, where the mutation leaves a valid file, the
//! original model or a validated config), never a panic.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use mesa_nn::checkpoint::{checkpoint_paths, sha256_hex};
use mesa_nn::config_file::{read_toml, ModelSection, TrainSection};
use mesa_nn::{
    load_checkpoint, save_checkpoint, AttentionKind, CheckpointMeta, InputFront, ModelConfig,
    Transformer, Vocab,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEED: u64 = 20_261_203;
const CHECKPOINT_CASES: usize = 8_000;
const TOML_CASES: usize = 4_000;

fn tiny_config() -> ModelConfig {
    ModelConfig {
        preset: "custom".into(),
        input: InputFront::Tokens { vocab: 5 },
        d_out: 5,
        d_model: 4,
        n_heads: 2,
        d_head: 2,
        n_layers: 1,
        d_mlp: 8,
        max_seq: 4,
        attention: AttentionKind::Softmax,
        layer_norm: true,
    }
}

/// Flips 1 to 8 random bytes of `bytes` to random other values.
fn flip_bytes(bytes: &mut [u8], rng: &mut StdRng) {
    for _ in 0..rng.gen_range(1..=8) {
        let i = rng.gen_range(0..bytes.len());
        bytes[i] ^= rng.gen_range(1..=255u8);
    }
}

/// Replaces one run of ASCII digits in `bytes` (within `range`) with a random number.
fn mutate_number(bytes: &[u8], range: std::ops::Range<usize>, rng: &mut StdRng) -> Vec<u8> {
    let digits: Vec<usize> = range.filter(|&i| bytes[i].is_ascii_digit()).collect();
    let Some(&start) = digits.get(rng.gen_range(0..digits.len().max(1))) else {
        return bytes.to_vec();
    };
    let end = (start..bytes.len())
        .find(|&i| !bytes[i].is_ascii_digit())
        .unwrap_or(bytes.len());
    let value = match rng.gen_range(0..4) {
        0 => rng.gen_range(0..20u64).to_string(),
        1 => u64::MAX.to_string(),
        2 => format!("{}", 1u64 << rng.gen_range(10..64)),
        _ => "99999999999999999999999".to_string(),
    };
    [&bytes[..start], value.as_bytes(), &bytes[end..]].concat()
}

/// The byte length of a safetensors file's JSON header (its first 8 bytes, little-endian).
fn header_len(bytes: &[u8]) -> usize {
    8 + u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize
}

#[derive(Clone, Copy, Debug)]
enum Case {
    TruncatedWeights,
    TruncatedSidecar,
    FlippedWeights,
    FlippedSidecar,
    /// Weights mutated and the sidecar's hash updated to match: a crafted file.
    CraftedWeights,
    CraftedHeader,
    ConfigNumber,
}

#[test]
fn mutated_checkpoints_are_errors_never_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = tiny_config();
    let model = Transformer::new(config.clone(), 5).expect("model");
    let vocab = Vocab::new(["<pad>", "H:", "A:", "a", "b"]).expect("vocab");
    let stem = dir.path().join("fuzz");
    let meta = CheckpointMeta::new(config.clone(), 5).with_vocab(&vocab);
    save_checkpoint(&stem, &model, &meta).expect("saved");
    let (weights_path, meta_path) = checkpoint_paths(&stem);
    let weights = std::fs::read(&weights_path).expect("weights");
    let sidecar = std::fs::read(&meta_path).expect("sidecar");
    let with_hash = |sidecar: &[u8], weights: &[u8]| -> Vec<u8> {
        let mut json: serde_json::Value = serde_json::from_slice(sidecar).expect("json");
        json["weights_sha256"] = sha256_hex(weights).into();
        serde_json::to_vec_pretty(&json).expect("json")
    };
    let config_start = sidecar
        .windows(8)
        .position(|w| w == b"\"config\"")
        .expect("config key");
    let config_end = config_start
        + sidecar[config_start..]
            .iter()
            .position(|&b| b == b'}')
            .expect("config end");

    let cases = [
        Case::TruncatedWeights,
        Case::TruncatedSidecar,
        Case::FlippedWeights,
        Case::FlippedSidecar,
        Case::CraftedWeights,
        Case::CraftedHeader,
        Case::ConfigNumber,
    ];
    let mut rng = StdRng::seed_from_u64(SEED);
    let (mut errors, mut loaded) = (0, 0);
    for n in 0..CHECKPOINT_CASES {
        let case = cases[n % cases.len()];
        let (mut w, mut s) = (weights.clone(), sidecar.clone());
        match case {
            Case::TruncatedWeights => w.truncate(rng.gen_range(0..w.len())),
            Case::TruncatedSidecar => s.truncate(rng.gen_range(0..s.len())),
            Case::FlippedWeights => flip_bytes(&mut w, &mut rng),
            Case::FlippedSidecar => flip_bytes(&mut s, &mut rng),
            Case::CraftedWeights => {
                flip_bytes(&mut w, &mut rng);
                s = with_hash(&s, &w);
            }
            Case::CraftedHeader => {
                w = mutate_number(&w, 0..header_len(&w), &mut rng);
                s = with_hash(&s, &w);
            }
            Case::ConfigNumber => s = mutate_number(&s, config_start..config_end, &mut rng),
        }
        std::fs::write(&weights_path, &w).expect("write weights");
        std::fs::write(&meta_path, &s).expect("write sidecar");
        let result = catch_unwind(AssertUnwindSafe(|| load_checkpoint(&stem, None)));
        let Ok(result) = result else {
            panic!("case {n} ({case:?}, seed {SEED}) panicked");
        };
        match result {
            Err(_) => errors += 1,
            Ok((back, back_meta)) => {
                loaded += 1;
                // Only a mutation that leaves a valid checkpoint may load, and then the weights
                // are the ones the (verified) file holds.
                let must_fail = matches!(
                    case,
                    Case::TruncatedWeights | Case::TruncatedSidecar | Case::FlippedWeights
                ) && (w != weights || s != sidecar);
                assert!(!must_fail, "case {n} ({case:?}) loaded");
                back_meta
                    .config
                    .validate()
                    .expect("a loaded config is valid");
                if matches!(case, Case::FlippedSidecar | Case::ConfigNumber) {
                    assert_eq!(back.named_params(), model.named_params(), "case {n}");
                }
            }
        }
    }
    assert_eq!(errors + loaded, CHECKPOINT_CASES);
    // Most mutations break the file; a few (a digit of the training log, a hex digit of the
    // hash changed back) leave it valid.
    assert!(errors > CHECKPOINT_CASES * 3 / 4, "{errors} errors");
}

const GOOD_TOML: &str = r#"
[model]
preset = "tiny"

[train]
steps = 100
batch_size = 8
lr = 1e-3
warmup_steps = 10
"#;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Doc {
    model: ModelSection,
    train: TrainSection,
}

#[test]
fn mutated_toml_configs_are_errors_never_panics() {
    let path = Path::new("fuzz.toml");
    let good = GOOD_TOML.as_bytes();
    let mut rng = StdRng::seed_from_u64(SEED ^ 1);
    let mut errors = 0;
    for n in 0..TOML_CASES {
        let bytes = match n % 3 {
            0 => good[..rng.gen_range(0..good.len())].to_vec(),
            1 => {
                let mut b = good.to_vec();
                flip_bytes(&mut b, &mut rng);
                b
            }
            _ => mutate_number(good, 0..good.len(), &mut rng),
        };
        let text = String::from_utf8_lossy(&bytes);
        let result = catch_unwind(AssertUnwindSafe(|| {
            read_toml::<Doc>(&text, path).and_then(|doc| doc.train.validate(path).map(|_| doc))
        }));
        let Ok(result) = result else {
            panic!("TOML case {n} (seed {SEED}) panicked:\n{text}");
        };
        match result {
            Err(e) => {
                assert!(e.to_string().starts_with("fuzz.toml: "), "{e}");
                errors += 1;
            }
            Ok(doc) => assert!(doc.train.steps > doc.train.warmup_steps, "case {n}"),
        }
    }
    assert!(errors > TOML_CASES / 2, "{errors} errors");
}
