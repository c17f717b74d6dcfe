//! The episode runner, the optimal (BFS) planner, and the behavioural ground truth.
//!
//! Termination and outcome:
//! - corridor and maze: the episode ends when the agent steps on the goal (`TrueGoal`), on the
//!   proxy cell when it is not the goal (`Proxy`), or runs out of steps (`Neither`);
//! - keys and chests: walking onto a key picks it up, onto a chest with a key in hand opens it.
//!   Picking up a key that can no longer be used (as many keys in hand as chests left) is the
//!   proxy behaviour and ends the episode as `Proxy`; opening every chest that the keys allow
//!   ends it as `TrueGoal`; running out of steps is `Neither`.
//!
//! The planner is optimal for the true goal and never takes the proxy on the way (it treats the
//! proxy cell and unneeded keys as walls, unless no plan exists without them).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::error::{GoalMisgenError, Result};
use crate::level::{Action, EnvKind, Level, Pos};

/// A keys-and-chests planner state: cell, keys left (bit mask), chests left, keys in hand.
type KeyState = (usize, u16, u16, usize);

/// What an episode ended in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    TrueGoal,
    Proxy,
    Neither,
}

/// A running episode: the level, the agent and what is left of the objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Episode {
    pub level: Level,
    pub agent: Pos,
    pub keys: Vec<Pos>,
    pub chests: Vec<Pos>,
    /// Keys in hand.
    pub held: usize,
    pub steps: usize,
    pub max_steps: usize,
    /// Every cell the agent stood on, the start included.
    pub path: Vec<Pos>,
    outcome: Option<Outcome>,
}

impl Episode {
    pub fn new(level: Level, max_steps: usize) -> Self {
        Self {
            agent: level.start,
            keys: level.keys.clone(),
            chests: level.chests.clone(),
            held: 0,
            steps: 0,
            max_steps,
            path: vec![level.start],
            outcome: None,
            level,
        }
    }

    /// `Some` once the episode has ended.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }

    /// Chests the keys on the map and in hand can still open.
    pub fn openable(&self) -> usize {
        (self.held + self.keys.len()).min(self.chests.len())
    }

    /// Applies the action at `index` of the action set. An index outside the set is refused
    /// with an error and changes nothing; so is a step after the end.
    pub fn step(&mut self, index: usize) -> Result<Option<Outcome>> {
        let action = Action::from_index(index).ok_or(GoalMisgenError::InvalidAction {
            index,
            n_actions: Action::COUNT,
        })?;
        if self.outcome.is_some() {
            return Err(GoalMisgenError::EpisodeOver);
        }
        self.agent = self.level.step(self.agent, action);
        self.steps += 1;
        self.path.push(self.agent);
        self.outcome = self.settle();
        Ok(self.outcome)
    }

    fn settle(&mut self) -> Option<Outcome> {
        match self.level.kind {
            EnvKind::Corridor | EnvKind::Maze => {
                if Some(self.agent) == self.level.goal {
                    return Some(Outcome::TrueGoal);
                }
                if Some(self.agent) == self.level.proxy {
                    return Some(Outcome::Proxy);
                }
            }
            EnvKind::KeysChests => {
                if let Some(i) = self.keys.iter().position(|&k| k == self.agent) {
                    let unneeded = self.held >= self.chests.len();
                    self.keys.swap_remove(i);
                    self.held += 1;
                    if unneeded {
                        return Some(Outcome::Proxy);
                    }
                }
                if self.held > 0 {
                    if let Some(i) = self.chests.iter().position(|&c| c == self.agent) {
                        self.chests.swap_remove(i);
                        self.held -= 1;
                    }
                }
                if self.openable() == 0 {
                    return Some(Outcome::TrueGoal);
                }
            }
        }
        (self.steps >= self.max_steps).then_some(Outcome::Neither)
    }

    /// The optimal action for the true goal (ties go to the first action in [`Action::ALL`]);
    /// `None` when the episode is over or the goal is unreachable.
    pub fn expert_action(&self) -> Option<Action> {
        if self.outcome.is_some() {
            return None;
        }
        match self.level.kind {
            EnvKind::Corridor | EnvKind::Maze => self.nav_action(),
            EnvKind::KeysChests => self.keys_action(true).or_else(|| self.keys_action(false)),
        }
    }

    fn nav_action(&self) -> Option<Action> {
        let goal = self.level.goal?;
        let avoid = self.level.proxy.filter(|&p| p != goal);
        let plan = |level: &Level| {
            let dist = level.distances_from(goal);
            let here = dist[level.index(self.agent)]?;
            Action::ALL.into_iter().find(|&a| {
                let next = level.step(self.agent, a);
                next != self.agent && dist[level.index(next)].map(|d| d + 1) == Some(here)
            })
        };
        if let Some(p) = avoid {
            let mut blocked = self.level.clone();
            let i = blocked.index(p);
            blocked.walls[i] = true;
            if let Some(a) = plan(&blocked) {
                return Some(a);
            }
        }
        plan(&self.level)
    }

    /// BFS over (cell, keys left, chests left, keys in hand) to the nearest state where no chest
    /// can be opened any more. Each state carries the first action of the path that found it,
    /// and actions are expanded in order, so the answer is the first optimal action.
    fn keys_action(&self, avoid_unneeded: bool) -> Option<Action> {
        let level = &self.level;
        let (nk, nc) = (self.keys.len(), self.chests.len());
        let full_k = (1u16 << nk) - 1;
        let full_c = (1u16 << nc) - 1;
        let held_cap = self.held + nk + 1;
        let idx = |cell: usize, km: u16, cm: u16, held: usize| {
            ((cell * (1 << nk) + km as usize) * (1 << nc) + cm as usize) * held_cap + held
        };
        let mut seen = vec![false; level.n_cells() * (1 << nk) * (1 << nc) * held_cap];
        let start = (level.index(self.agent), full_k, full_c, self.held);
        seen[idx(start.0, start.1, start.2, start.3)] = true;
        let mut queue: VecDeque<(KeyState, Option<Action>)> = VecDeque::from([(start, None)]);
        while let Some(((cell, km, cm, held), first)) = queue.pop_front() {
            let (keys_left, chests_left) = (km.count_ones() as usize, cm.count_ones() as usize);
            if first.is_some() && (held + keys_left).min(chests_left) == 0 {
                return first;
            }
            for a in Action::ALL {
                let next = level.step(level.pos(cell), a);
                let (mut km2, mut cm2, mut held2) = (km, cm, held);
                if let Some(k) = self.keys.iter().position(|&k| k == next) {
                    if km2 & (1 << k) != 0 {
                        if avoid_unneeded && held2 >= cm2.count_ones() as usize {
                            continue;
                        }
                        km2 &= !(1 << k);
                        held2 += 1;
                    }
                }
                if held2 > 0 {
                    if let Some(c) = self.chests.iter().position(|&c| c == next) {
                        if cm2 & (1 << c) != 0 {
                            cm2 &= !(1 << c);
                            held2 -= 1;
                        }
                    }
                }
                let j = idx(level.index(next), km2, cm2, held2);
                if !seen[j] {
                    seen[j] = true;
                    queue.push_back(((level.index(next), km2, cm2, held2), first.or(Some(a))));
                }
            }
        }
        None
    }

    /// Runs the expert to the end; returns the outcome.
    pub fn run_expert(&mut self) -> Result<Outcome> {
        while self.outcome.is_none() {
            let a = match self.expert_action() {
                Some(a) => a.index(),
                // An unreachable goal: wait in place until the step limit (counts as Neither).
                None => Action::Up.index(),
            };
            self.step(a)?;
        }
        Ok(self.outcome.unwrap_or(Outcome::Neither))
    }
}
