//! Checkpoints round-trip exactly and refuse anything that does not match.

use mesa_nn::checkpoint::{checkpoint_paths, sha256_hex};
use mesa_nn::{
    load_checkpoint, save_checkpoint, CheckpointMeta, Input, NnError, Preset, Small, Tiny,
    Transformer, Vocab,
};

fn saved(dir: &std::path::Path) -> (std::path::PathBuf, Transformer) {
    let config = Tiny::language_model(9, 8);
    let model = Transformer::new(config.clone(), 11).unwrap();
    let stem = dir.join("model");
    save_checkpoint(&stem, &model, &CheckpointMeta::new(config, 11)).unwrap();
    (stem, model)
}

#[test]
fn checkpoint_round_trips_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (stem, model) = saved(dir.path());
    let (loaded, meta) = load_checkpoint(&stem, Some(model.config())).unwrap();
    let x = Input::tokens(&[vec![1, 2, 3, 4, 5]]).unwrap();
    assert_eq!(model.forward(&x).unwrap(), loaded.forward(&x).unwrap());
    assert_eq!(meta.seed, 11);
    assert_eq!(model.named_params(), loaded.named_params());
}

#[test]
fn loading_with_another_preset_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (stem, _) = saved(dir.path());
    let err = load_checkpoint(&stem, Some(&Small::language_model(9, 8))).unwrap_err();
    assert!(err.to_string().contains("model.json"), "{err}");
    assert!(err.to_string().contains("tiny"), "{err}");
}

#[test]
fn truncated_weights_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let (stem, _) = saved(dir.path());
    let (weights, _) = checkpoint_paths(&stem);
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_checkpoint(&stem, None).unwrap_err();
    assert!(matches!(err, NnError::Checkpoint { .. }), "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

#[test]
fn a_tensor_of_the_wrong_shape_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (stem, _) = saved(dir.path());
    // Same weights file, but a sidecar that claims a wider vocabulary.
    let (_, meta_path) = checkpoint_paths(&stem);
    let mut meta: CheckpointMeta =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta.config = Tiny::language_model(10, 8);
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    let err = load_checkpoint(&stem, None).unwrap_err();
    match &err {
        NnError::CheckpointTensor { tensor, path, .. } => {
            assert_eq!(tensor, "embed.W_E");
            assert!(path.ends_with("model.safetensors"));
        }
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn missing_or_corrupt_sidecar_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (stem, _) = saved(dir.path());
    let (_, meta_path) = checkpoint_paths(&stem);
    std::fs::write(&meta_path, b"{ not json").unwrap();
    let err = load_checkpoint(&stem, None).unwrap_err();
    assert!(err.to_string().contains("model.json"), "{err}");
    std::fs::remove_file(&meta_path).unwrap();
    let err = load_checkpoint(&stem, None).unwrap_err();
    assert!(matches!(err, NnError::Io { .. }), "{err}");
}

#[test]
fn new_weights_beside_an_old_sidecar_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (stem, model) = saved(dir.path());
    let (weights, meta_path) = checkpoint_paths(&stem);
    let old_sidecar = std::fs::read(&meta_path).unwrap();
    // Another model of the same shape is saved; then the old sidecar comes back, as if a crash
    // had happened between the two renames of an older save scheme.
    let other = Transformer::new(model.config().clone(), 12).unwrap();
    save_checkpoint(
        &stem,
        &other,
        &CheckpointMeta::new(model.config().clone(), 12),
    )
    .unwrap();
    std::fs::write(&meta_path, old_sidecar).unwrap();
    let err = load_checkpoint(&stem, None).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("SHA-256") && msg.contains("model.safetensors"),
        "{msg}"
    );
    assert!(weights.exists());
}

#[test]
fn the_sidecar_records_the_weights_hash_and_the_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    let config = Tiny::language_model(4, 8);
    let model = Transformer::new(config.clone(), 3).unwrap();
    let vocab = Vocab::new(["<pad>", "H:", "A:", "yes"]).unwrap();
    let stem = dir.path().join("m");
    save_checkpoint(
        &stem,
        &model,
        &CheckpointMeta::new(config, 3).with_vocab(&vocab),
    )
    .unwrap();
    let (weights, meta_path) = checkpoint_paths(&stem);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    assert_eq!(json["format_version"], 2);
    assert_eq!(
        json["vocab"],
        serde_json::json!(["<pad>", "H:", "A:", "yes"])
    );
    let hash = sha256_hex(&std::fs::read(&weights).unwrap());
    assert_eq!(json["weights_sha256"], hash.as_str());
    let (_, meta) = load_checkpoint(&stem, None).unwrap();
    assert_eq!(meta.vocab.as_deref(), Some(vocab.words()));

    // A vocabulary that does not fit the model is refused, on save and on load.
    let short = Vocab::new(["a", "b"]).unwrap();
    let err = save_checkpoint(
        &stem,
        &model,
        &CheckpointMeta::new(model.config().clone(), 3).with_vocab(&short),
    )
    .unwrap_err();
    assert!(err.to_string().contains("vocabulary of 2 words"), "{err}");
    let mut edited = json.clone();
    edited["vocab"] = serde_json::json!(["a", "a", "b", "c"]);
    std::fs::write(&meta_path, serde_json::to_vec(&edited).unwrap()).unwrap();
    let err = load_checkpoint(&stem, None).unwrap_err();
    assert!(
        err.to_string().contains("m.json") && err.to_string().contains("twice"),
        "{err}"
    );
}

#[test]
fn a_format_1_sidecar_loads_without_hash_check() {
    let dir = tempfile::tempdir().unwrap();
    let (stem, model) = saved(dir.path());
    let (_, meta_path) = checkpoint_paths(&stem);
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    let object = json.as_object_mut().unwrap();
    object.remove("weights_sha256");
    object.remove("vocab");
    object.insert("format_version".into(), 1.into());
    std::fs::write(&meta_path, serde_json::to_vec(&json).unwrap()).unwrap();
    let (loaded, meta) = load_checkpoint(&stem, None).unwrap();
    assert_eq!(meta.format_version, 1);
    assert_eq!(meta.weights_sha256, None);
    assert_eq!(loaded.named_params(), model.named_params());

    // The same sidecar claiming format 2 must carry the hash.
    json["format_version"] = 2.into();
    std::fs::write(&meta_path, serde_json::to_vec(&json).unwrap()).unwrap();
    let err = load_checkpoint(&stem, None).unwrap_err();
    assert!(err.to_string().contains("weights_sha256"), "{err}");
}

#[test]
fn a_crafted_config_is_refused_before_anything_is_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let (stem, _) = saved(dir.path());
    let (_, meta_path) = checkpoint_paths(&stem);
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    json["config"]["d_model"] = (1u64 << 40).into();
    std::fs::write(&meta_path, serde_json::to_vec(&json).unwrap()).unwrap();
    let err = load_checkpoint(&stem, None).unwrap_err();
    assert!(matches!(err, NnError::Checkpoint { .. }), "{err}");
    assert!(
        err.to_string().contains("d_model") && err.to_string().contains("limit"),
        "{err}"
    );
}
