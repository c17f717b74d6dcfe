//! Checkpoints round-trip exactly and refuse anything that does not match.

use mesa_nn::checkpoint::checkpoint_paths;
use mesa_nn::{
    load_checkpoint, save_checkpoint, CheckpointMeta, Input, NnError, Preset, Small, Tiny,
    Transformer,
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
