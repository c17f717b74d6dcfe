//! Name -> constructor, so experiments iterate every detector and adding one is one line.

use mesa_nn::HookPoint;

use crate::audit::ModelDetector;
use crate::detector::InputDetector;
use crate::error::{DetectError, Result};
use crate::meta::{InputInfo, ModelInfo};

/// What an experiment tells every detector it builds: the seed all its randomness flows from,
/// and where in the model an activation-reading detector reads (others ignore `hook`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectorSpec {
    pub seed: u64,
    pub hook: HookPoint,
}

/// Builds an input-level detector with the crate's default hyper-parameters.
pub type InputConstructor = fn(&DetectorSpec) -> Result<Box<dyn InputDetector>>;
/// Builds a model-level detector with the crate's default hyper-parameters.
pub type ModelConstructor = fn(&DetectorSpec) -> Result<Box<dyn ModelDetector>>;

/// One registered detector: its name, what a harness must know about it ([`InputInfo`] or
/// [`ModelInfo`]), and its constructor.
#[derive(Debug, Clone, Copy)]
pub struct Entry<C, I> {
    pub name: &'static str,
    pub info: I,
    pub construct: C,
}

/// A registered input-level detector.
pub type InputEntry = Entry<InputConstructor, InputInfo>;
/// A registered model-level detector.
pub type ModelEntry = Entry<ModelConstructor, ModelInfo>;

impl InputEntry {
    /// Builds the detector and checks it declares the fit data its entry does.
    ///
    /// # Errors
    /// The constructor's error, or [`DetectError::Contract`] if the two disagree.
    pub fn build(&self, spec: &DetectorSpec) -> Result<Box<dyn InputDetector>> {
        let detector = (self.construct)(spec)?;
        if detector.requires() != self.info.requires {
            return Err(DetectError::Contract {
                detector: self.name.to_string(),
                reason: format!(
                    "registered as requiring {:?}, built one requiring {:?}",
                    self.info.requires,
                    detector.requires()
                ),
            });
        }
        Ok(detector)
    }
}

impl ModelEntry {
    /// Builds the detector and checks it declares the context its entry does.
    ///
    /// # Errors
    /// The constructor's error, or [`DetectError::Contract`] if the two disagree.
    pub fn build(&self, spec: &DetectorSpec) -> Result<Box<dyn ModelDetector>> {
        let detector = (self.construct)(spec)?;
        if detector.needs() != self.info.needs {
            return Err(DetectError::Contract {
                detector: self.name.to_string(),
                reason: format!(
                    "registered as needing {:?}, built one needing {:?}",
                    self.info.needs,
                    detector.needs()
                ),
            });
        }
        Ok(detector)
    }
}

/// Every detector an experiment can run, in registration order.
#[derive(Debug, Default)]
pub struct Registry {
    inputs: Vec<InputEntry>,
    models: Vec<ModelEntry>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an input-level detector.
    ///
    /// # Errors
    /// [`DetectError::DuplicateName`] if any detector already has `name`.
    pub fn register_input(
        &mut self,
        name: &'static str,
        info: InputInfo,
        construct: InputConstructor,
    ) -> Result<()> {
        self.check_new(name)?;
        self.inputs.push(Entry {
            name,
            info,
            construct,
        });
        Ok(())
    }

    /// Registers a model-level detector.
    ///
    /// # Errors
    /// [`DetectError::DuplicateName`] if any detector already has `name`.
    pub fn register_model(
        &mut self,
        name: &'static str,
        info: ModelInfo,
        construct: ModelConstructor,
    ) -> Result<()> {
        self.check_new(name)?;
        self.models.push(Entry {
            name,
            info,
            construct,
        });
        Ok(())
    }

    pub fn input_detectors(&self) -> &[InputEntry] {
        &self.inputs
    }

    pub fn model_detectors(&self) -> &[ModelEntry] {
        &self.models
    }

    /// The entry of the input-level detector called `name`.
    ///
    /// # Errors
    /// [`DetectError::UnknownDetector`] listing the registered names.
    pub fn input_entry(&self, name: &str) -> Result<&InputEntry> {
        self.inputs
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| self.unknown(name))
    }

    /// The entry of the model-level detector called `name`.
    ///
    /// # Errors
    /// [`DetectError::UnknownDetector`] listing the registered names.
    pub fn model_entry(&self, name: &str) -> Result<&ModelEntry> {
        self.models
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| self.unknown(name))
    }

    /// Builds the input-level detector called `name` ([`InputEntry::build`]).
    ///
    /// # Errors
    /// [`DetectError::UnknownDetector`] listing the registered names, or the build's error.
    pub fn input(&self, name: &str, spec: &DetectorSpec) -> Result<Box<dyn InputDetector>> {
        self.input_entry(name)?.build(spec)
    }

    /// Builds the model-level detector called `name` ([`ModelEntry::build`]).
    ///
    /// # Errors
    /// [`DetectError::UnknownDetector`] listing the registered names, or the build's error.
    pub fn model(&self, name: &str, spec: &DetectorSpec) -> Result<Box<dyn ModelDetector>> {
        self.model_entry(name)?.build(spec)
    }

    fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.inputs
            .iter()
            .map(|e| e.name)
            .chain(self.models.iter().map(|e| e.name))
    }

    fn check_new(&self, name: &str) -> Result<()> {
        if self.names().any(|n| n == name) {
            return Err(DetectError::DuplicateName {
                name: name.to_string(),
            });
        }
        Ok(())
    }

    fn unknown(&self, name: &str) -> DetectError {
        DetectError::UnknownDetector {
            name: name.to_string(),
            known: self.names().collect::<Vec<_>>().join(", "),
        }
    }
}
