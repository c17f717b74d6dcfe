//! Observations as tokens: one token per cell (row-major), then the agent's cell, the goal's
//! cell, the keys in hand, and a query token whose output is the policy's action.
//!
//! ```text
//! [cell_0 .. cell_{n-1}, AT(agent), AT(goal) | NONE, HELD(k), QUERY]
//! ```
//!
//! A cell token names the cell's content (`EMPTY, WALL, AGENT, GOAL, KEY, CHEST`) and a
//! **navigation hint**: the first move of a shortest path from the agent to that cell and the
//! path's length, capped at [`MAX_DISTANCE`] (or none: the agent's own cell, walls, unreachable
//! cells). The hint is computed by BFS from the agent
//! alone and knows nothing of the goal, so the policy is given the skill of getting somewhere
//! and must learn *where* to go: what it chooses to head for is its own, which is what goal
//! misgeneralization is about. (Why: without hints, a 2-layer `Tiny` policy behaviour-cloned
//! for 500 steps reached only 24-82% success on its own training mazes, so test failures would
//! have been capability failures, not goal failures.) `AT(i)` is one token per cell index.

use crate::episode::Episode;
use crate::level::{Action, Level, Pos};

pub const EMPTY: usize = 0;
pub const WALL: usize = 1;
pub const AGENT: usize = 2;
pub const GOAL: usize = 3;
pub const KEY: usize = 4;
pub const CHEST: usize = 5;
/// Number of cell contents.
pub const CONTENTS: usize = 6;
/// Path lengths at or beyond this share one hint.
pub const MAX_DISTANCE: usize = 8;
/// Navigation hints per content: none, or one of the four actions times a distance.
pub const HINTS: usize = 1 + Action::COUNT * MAX_DISTANCE;
/// `HELD_0 + k` for `k` keys in hand, capped at [`MAX_HELD`].
pub const HELD_0: usize = CONTENTS * HINTS;
pub const MAX_HELD: usize = 8;
pub const NONE: usize = HELD_0 + MAX_HELD + 1;
pub const QUERY: usize = NONE + 1;
/// `AT_0 + i` names cell `i`.
pub const AT_0: usize = QUERY + 1;

/// A navigation hint: the first move of a shortest path to a cell, and its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hint {
    pub first_move: Action,
    pub distance: usize,
}

/// The token of a cell holding `content` with navigation hint `hint` (`None`: no path, or the
/// agent's own cell).
pub fn cell_token(content: usize, hint: Option<Hint>) -> usize {
    content * HINTS
        + hint.map_or(0, |h| {
            1 + h.first_move.index() * MAX_DISTANCE + h.distance.clamp(1, MAX_DISTANCE) - 1
        })
}

/// The content a cell token encodes (`None` for a token that is not a cell).
pub fn content_of(token: usize) -> Option<usize> {
    (token < HELD_0).then_some(token / HINTS)
}

/// The navigation hint a cell token encodes.
pub fn hint_of(token: usize) -> Option<Action> {
    if token >= HELD_0 {
        return None;
    }
    match token % HINTS {
        0 => None,
        h => Action::from_index((h - 1) / MAX_DISTANCE),
    }
}

/// Vocabulary size for a grid of `n_cells` cells.
pub fn vocab_size(n_cells: usize) -> usize {
    AT_0 + n_cells
}

/// Sequence length for a grid of `n_cells` cells.
pub fn seq_len(n_cells: usize) -> usize {
    n_cells + 4
}

/// Position of the query token (the last one).
pub fn query_position(n_cells: usize) -> usize {
    n_cells + 3
}

/// What to leave out of an observation (for the goal vector and the goal-sensitivity signal).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mask {
    /// Remove the true goal: the cheese / coin, or every chest.
    pub hide_goal: bool,
}

/// For every cell, the first move of a shortest path from `from` to it (ties go to the first
/// action in [`Action::ALL`], as in the planner) and its length; `None` for `from` itself,
/// walls and unreachable cells. One breadth-first search: it runs for every observation.
pub fn hints(level: &Level, from: Pos) -> Vec<Option<Hint>> {
    let mut hints: Vec<Option<Hint>> = vec![None; level.n_cells()];
    if !level.is_open(from) {
        return hints;
    }
    let mut seen = vec![false; level.n_cells()];
    seen[level.index(from)] = true;
    // Expanding the start's neighbours in action order, then breadth first, gives every cell
    // the first move of the earliest-ordered shortest path.
    let mut queue: std::collections::VecDeque<(Pos, Option<Hint>)> =
        std::collections::VecDeque::from([(from, None)]);
    while let Some((p, here)) = queue.pop_front() {
        for a in Action::ALL {
            let next = level.step(p, a);
            let i = level.index(next);
            if !seen[i] {
                seen[i] = true;
                let hint = Hint {
                    first_move: here.map_or(a, |h| h.first_move),
                    distance: here.map_or(1, |h| h.distance + 1),
                };
                hints[i] = Some(hint);
                queue.push_back((next, Some(hint)));
            }
        }
    }
    hints
}

/// For every cell, the first move of a shortest path from `from` to it (ties as in [`hints`]).
pub fn first_moves(level: &Level, from: Pos) -> Vec<Option<Action>> {
    hints(level, from)
        .into_iter()
        .map(|h| h.map(|h| h.first_move))
        .collect()
}

/// The token sequence an agent sees in `episode`'s current state.
pub fn observe(episode: &Episode, mask: Mask) -> Vec<usize> {
    let level = &episode.level;
    let n = level.n_cells();
    let mut contents: Vec<usize> = level
        .walls
        .iter()
        .map(|&w| if w { WALL } else { EMPTY })
        .collect();
    for &k in &episode.keys {
        contents[level.index(k)] = KEY;
    }
    if !mask.hide_goal {
        for &c in &episode.chests {
            contents[level.index(c)] = CHEST;
        }
        if let Some(g) = level.goal {
            contents[level.index(g)] = GOAL;
        }
    }
    contents[level.index(episode.agent)] = AGENT;
    let hints = hints(level, episode.agent);
    let mut tokens: Vec<usize> = contents
        .iter()
        .zip(&hints)
        .map(|(&c, &h)| cell_token(c, h))
        .collect();
    tokens.push(AT_0 + level.index(episode.agent));
    tokens.push(match level.goal {
        Some(g) if !mask.hide_goal => AT_0 + level.index(g),
        _ => NONE,
    });
    tokens.push(HELD_0 + episode.held.min(MAX_HELD));
    tokens.push(QUERY);
    debug_assert_eq!(tokens.len(), seq_len(n));
    tokens
}
