//! Grid positions, the action set and a level (walls, start, objects).

use serde::{Deserialize, Serialize};

/// A cell: column `x` (0 = left), row `y` (0 = top).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pos {
    pub x: usize,
    pub y: usize,
}

impl Pos {
    pub const fn new(x: usize, y: usize) -> Self {
        Self { x, y }
    }
}

/// The four moves. Moving into a wall or off the grid leaves the agent where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    Up,
    Down,
    Left,
    Right,
}

impl Action {
    /// The action set, in the order of the policy head's outputs.
    pub const ALL: [Action; 4] = [Action::Up, Action::Down, Action::Left, Action::Right];
    /// Width of the policy head.
    pub const COUNT: usize = 4;

    /// The action at `index` of the policy head, or `None` outside the action set.
    pub fn from_index(index: usize) -> Option<Action> {
        Self::ALL.get(index).copied()
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Which gridworld a level belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvKind {
    /// CoinRun at toy scale: a strip with obstacles; the proxy is the right end.
    Corridor,
    /// A perfect maze; the proxy is the top-right corner.
    Maze,
    /// Keys open chests; the proxy is collecting keys.
    KeysChests,
}

impl EnvKind {
    pub fn name(self) -> &'static str {
        match self {
            EnvKind::Corridor => "corridor",
            EnvKind::Maze => "maze",
            EnvKind::KeysChests => "keys_chests",
        }
    }
}

/// One level: a grid of walls, where the agent starts, and the objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    pub kind: EnvKind,
    pub width: usize,
    pub height: usize,
    /// Row-major, `walls[y * width + x]`.
    pub walls: Vec<bool>,
    pub start: Pos,
    /// The true goal (coin, cheese); `None` in keys and chests, where the goal is the chests.
    pub goal: Option<Pos>,
    /// The proxy location (right end, top-right corner); `None` in keys and chests.
    pub proxy: Option<Pos>,
    pub keys: Vec<Pos>,
    pub chests: Vec<Pos>,
}

impl Level {
    pub fn n_cells(&self) -> usize {
        self.width * self.height
    }

    pub fn index(&self, p: Pos) -> usize {
        p.y * self.width + p.x
    }

    pub fn pos(&self, index: usize) -> Pos {
        Pos::new(index % self.width, index / self.width)
    }

    pub fn is_open(&self, p: Pos) -> bool {
        p.x < self.width && p.y < self.height && !self.walls[self.index(p)]
    }

    /// Where `action` takes an agent at `p`: the neighbouring cell, or `p` itself when that is a
    /// wall or off the grid.
    pub fn step(&self, p: Pos, action: Action) -> Pos {
        let next = match action {
            Action::Up if p.y > 0 => Pos::new(p.x, p.y - 1),
            Action::Down => Pos::new(p.x, p.y + 1),
            Action::Left if p.x > 0 => Pos::new(p.x - 1, p.y),
            Action::Right => Pos::new(p.x + 1, p.y),
            _ => p,
        };
        if self.is_open(next) {
            next
        } else {
            p
        }
    }

    pub fn open_cells(&self) -> Vec<Pos> {
        (0..self.n_cells())
            .map(|i| self.pos(i))
            .filter(|&p| self.is_open(p))
            .collect()
    }

    /// BFS distances (in moves) from `from` to every cell; `None` where unreachable or a wall.
    pub fn distances_from(&self, from: Pos) -> Vec<Option<usize>> {
        let mut dist = vec![None; self.n_cells()];
        if !self.is_open(from) {
            return dist;
        }
        let mut queue = std::collections::VecDeque::from([from]);
        dist[self.index(from)] = Some(0);
        while let Some(p) = queue.pop_front() {
            let d = dist[self.index(p)].unwrap_or(0);
            for a in Action::ALL {
                let q = self.step(p, a);
                if dist[self.index(q)].is_none() {
                    dist[self.index(q)] = Some(d + 1);
                    queue.push_back(q);
                }
            }
        }
        dist
    }

    /// Whether every open cell can be reached from every other.
    pub fn is_connected(&self) -> bool {
        let open = self.open_cells();
        let Some(&first) = open.first() else {
            return false;
        };
        let dist = self.distances_from(first);
        open.iter().all(|&p| dist[self.index(p)].is_some())
    }
}
