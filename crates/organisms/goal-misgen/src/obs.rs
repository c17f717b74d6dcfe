//! Observations as tokens: one token per cell (row-major), then the agent's cell, the goal's
//! cell, the keys in hand, the contents of the four cells next to the agent (up, down, left,
//! right; off the grid reads as a wall), and a query token whose output is the policy's action.
//!
//! ```text
//! [cell_0 .. cell_{n-1}, AT(agent), AT(goal) | NONE, HELD(k), up, down, left, right, QUERY]
//! ```
//! The neighbour tokens spare a tiny model from learning to look up cells by position before it
//! can avoid walls; the whole grid is still there for planning.
//! Cell tokens: `EMPTY, WALL, AGENT, GOAL, KEY, CHEST`; `AT(i)` is one token per cell index.

use crate::episode::Episode;
use crate::level::Action;

pub const EMPTY: usize = 0;
pub const WALL: usize = 1;
pub const AGENT: usize = 2;
pub const GOAL: usize = 3;
pub const KEY: usize = 4;
pub const CHEST: usize = 5;
/// `HELD_0 + k` for `k` keys in hand, capped at [`MAX_HELD`].
pub const HELD_0: usize = 6;
pub const MAX_HELD: usize = 8;
pub const NONE: usize = HELD_0 + MAX_HELD + 1;
pub const QUERY: usize = NONE + 1;
/// `AT_0 + i` names cell `i`.
pub const AT_0: usize = QUERY + 1;

/// Vocabulary size for a grid of `n_cells` cells.
pub fn vocab_size(n_cells: usize) -> usize {
    AT_0 + n_cells
}

/// Sequence length for a grid of `n_cells` cells.
pub fn seq_len(n_cells: usize) -> usize {
    n_cells + 8
}

/// Position of the query token (the last one).
pub fn query_position(n_cells: usize) -> usize {
    n_cells + 7
}

/// What to leave out of an observation (for the goal vector and the goal-sensitivity signal).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mask {
    /// Remove the true goal: the cheese / coin, or every chest.
    pub hide_goal: bool,
}

/// The token sequence an agent sees in `episode`'s current state.
pub fn observe(episode: &Episode, mask: Mask) -> Vec<usize> {
    let level = &episode.level;
    let n = level.n_cells();
    let mut tokens: Vec<usize> = level
        .walls
        .iter()
        .map(|&w| if w { WALL } else { EMPTY })
        .collect();
    for &k in &episode.keys {
        tokens[level.index(k)] = KEY;
    }
    if !mask.hide_goal {
        for &c in &episode.chests {
            tokens[level.index(c)] = CHEST;
        }
        if let Some(g) = level.goal {
            tokens[level.index(g)] = GOAL;
        }
    }
    tokens[level.index(episode.agent)] = AGENT;
    tokens.push(AT_0 + level.index(episode.agent));
    tokens.push(match level.goal {
        Some(g) if !mask.hide_goal => AT_0 + level.index(g),
        _ => NONE,
    });
    tokens.push(HELD_0 + episode.held.min(MAX_HELD));
    for a in Action::ALL {
        let next = level.step(episode.agent, a);
        tokens.push(if next == episode.agent {
            WALL
        } else {
            tokens[level.index(next)]
        });
    }
    tokens.push(QUERY);
    debug_assert_eq!(tokens.len(), seq_len(n));
    tokens
}
