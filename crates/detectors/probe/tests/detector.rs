//! Every registered probe through the `mesa-detect` contract on a small untrained model.

use mesa_detect::{
    fit_input, score_inputs, ContrastPair, DetectorSpec, Family, FitData, Labelled, Registry,
};
use mesa_nn::{HookPoint, Preset, Tiny, Transformer};

#[test]
fn every_registered_probe_fits_and_scores_through_the_contract() {
    let model = Transformer::new(Tiny::language_model(16, 16), 5).expect("model");
    let mut registry = Registry::new();
    mesa_probe::register(&mut registry).expect("register");
    assert_eq!(registry.input_detectors().len(), 7);

    // Inputs that contain token 9 are "positive".
    let inputs: Vec<Vec<usize>> = (0..40)
        .map(|i| {
            let mut t = vec![1 + i % 5, 2 + i % 7, 3];
            if i % 2 == 0 {
                t.push(9);
            }
            t.push(4);
            t
        })
        .collect();
    let labels: Vec<bool> = (0..40).map(|i| i % 2 == 0).collect();
    let pairs: Vec<ContrastPair> = (0..10)
        .map(|i| ContrastPair {
            positive: vec![1 + i % 5, 6, 10],
            negative: vec![1 + i % 5, 6, 11],
        })
        .collect();
    let data = FitData {
        labelled: Some(Labelled::new(&inputs, &labels).expect("labelled")),
        unlabelled: &inputs,
        pairs: &pairs,
    };
    let spec = DetectorSpec {
        seed: 3,
        hook: HookPoint::resid_post(1),
    };
    for entry in registry.input_detectors() {
        assert_eq!(entry.info.family, Family::Probe);
        let detector = entry.build(&spec).expect("construct");
        let fitted = fit_input(detector.as_ref(), &model, &data).expect(entry.name);
        let scores = score_inputs(fitted.as_ref(), &model, &inputs).expect("scores");
        assert_eq!(scores.len(), inputs.len());
        assert!(fitted.name().starts_with(entry.name));
    }
    // The harness reads sign and controls from the info, not the name.
    let info = |name: &str| registry.input_entry(name).expect(name).info;
    assert!(!info("top-pc").sign_identifiable && info("lat").sign_identifiable);
    assert!(info("logistic").shuffled_null && !info("contrast").shuffled_null);
    assert!(info("shuffled").control && !info("shuffled").shuffled_null);
    // Missing fit data is an error, never a default score.
    let lat = registry.input("lat", &spec).expect("lat");
    assert!(lat.fit(&model, &FitData::default()).is_err());
}
