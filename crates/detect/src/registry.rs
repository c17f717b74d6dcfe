//! Name -> constructor, so experiments iterate every detector and adding one is one line.

use mesa_nn::HookPoint;

use crate::detector::{InputDetector, ModelDetector};
use crate::error::{DetectError, Result};

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

/// One registered detector.
#[derive(Debug, Clone, Copy)]
pub struct Entry<C> {
    pub name: &'static str,
    /// One line for `--help` and the README.
    pub summary: &'static str,
    pub construct: C,
}

/// Every detector an experiment can run, in registration order.
#[derive(Debug, Default)]
pub struct Registry {
    inputs: Vec<Entry<InputConstructor>>,
    models: Vec<Entry<ModelConstructor>>,
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
        summary: &'static str,
        construct: InputConstructor,
    ) -> Result<()> {
        self.check_new(name)?;
        self.inputs.push(Entry {
            name,
            summary,
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
        summary: &'static str,
        construct: ModelConstructor,
    ) -> Result<()> {
        self.check_new(name)?;
        self.models.push(Entry {
            name,
            summary,
            construct,
        });
        Ok(())
    }

    pub fn input_detectors(&self) -> &[Entry<InputConstructor>] {
        &self.inputs
    }

    pub fn model_detectors(&self) -> &[Entry<ModelConstructor>] {
        &self.models
    }

    /// Builds the input-level detector called `name`.
    ///
    /// # Errors
    /// [`DetectError::UnknownDetector`] listing the registered names, or the constructor's error.
    pub fn input(&self, name: &str, spec: &DetectorSpec) -> Result<Box<dyn InputDetector>> {
        let entry = self
            .inputs
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| self.unknown(name))?;
        (entry.construct)(spec)
    }

    /// Builds the model-level detector called `name`.
    ///
    /// # Errors
    /// [`DetectError::UnknownDetector`] listing the registered names, or the constructor's error.
    pub fn model(&self, name: &str, spec: &DetectorSpec) -> Result<Box<dyn ModelDetector>> {
        let entry = self
            .models
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| self.unknown(name))?;
        (entry.construct)(spec)
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
