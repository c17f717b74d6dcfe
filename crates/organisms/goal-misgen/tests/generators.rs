//! The generators and the planner are exact: mazes are connected and perfect, training cheese
//! and coins lie where the config says, the BFS planner is optimal, the runner refuses actions
//! outside the action set.

mod common;

use mesa_goalmisgen::generate::reachable_avoiding;
use mesa_goalmisgen::{EnvSpec, Episode, GoalMisgenError, Level, Outcome, Pos, Region, Split};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn maze_spec(size: usize, region: Region) -> EnvSpec {
    let mut config = common::config().maze;
    config.size = size;
    EnvSpec::Maze { config, region }
}

/// Open cells and the edges between open neighbours.
fn graph_counts(level: &Level) -> (usize, usize) {
    let open = level.open_cells();
    let edges = open
        .iter()
        .map(|p| {
            let right = Pos::new(p.x + 1, p.y);
            let down = Pos::new(p.x, p.y + 1);
            usize::from(level.is_open(right)) + usize::from(level.is_open(down))
        })
        .sum();
    (open.len(), edges)
}

#[test]
fn mazes_are_connected_perfect_and_open_at_start_and_corner() {
    for size in [5, 7, 9, 11] {
        let spec = maze_spec(size, Region::FULL);
        let mut rng = StdRng::seed_from_u64(size as u64);
        for _ in 0..50 {
            let level = spec.generate(Split::Test, &mut rng).unwrap();
            assert!(level.is_connected(), "size {size}: disconnected maze");
            let (cells, edges) = graph_counts(&level);
            // A connected graph with one edge fewer than vertices is a tree: a perfect maze.
            assert_eq!(edges + 1, cells, "size {size}: the maze has a loop");
            let rooms = size.div_ceil(2);
            assert_eq!(cells, rooms * rooms + rooms * rooms - 1);
            assert!(level.is_open(level.start) && level.is_open(Pos::new(size - 1, 0)));
        }
    }
}

#[test]
fn training_cheese_always_lies_in_the_region_and_test_cheese_off_the_corner() {
    for k in [1, 2, 3, 5] {
        let spec = maze_spec(7, Region::Side(k));
        let mut rng = StdRng::seed_from_u64(k as u64);
        for _ in 0..200 {
            let level = spec.generate(Split::Train, &mut rng).unwrap();
            let cheese = level.goal.unwrap();
            assert!(level.is_open(cheese) && cheese != level.start);
            assert!(
                cheese.x + k >= 7 && cheese.y < k,
                "k={k}: cheese at {cheese:?}"
            );
            let test = spec.generate(Split::Test, &mut rng).unwrap();
            assert_ne!(test.goal, test.proxy);
            let goal = test.goal.unwrap();
            assert!(test.is_open(goal));
            // Off the start-to-corner path: a corner-seeker never steps on the test cheese.
            let corner = test.proxy.unwrap();
            let (from_start, to_corner) =
                (test.distances_from(test.start), test.distances_from(corner));
            let i = test.index(goal);
            assert_ne!(
                from_start[i].unwrap() + to_corner[i].unwrap(),
                from_start[test.index(corner)].unwrap(),
                "k={k}: test cheese {goal:?} lies on the way to the corner"
            );
        }
    }
}

#[test]
fn corridor_coin_is_at_the_end_without_randomization() {
    let config = common::config().corridor;
    let spec = EnvSpec::Corridor {
        config,
        random_percent: 0.0,
    };
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..200 {
        let level = spec.generate(Split::Train, &mut rng).unwrap();
        assert!(level.is_connected());
        assert_eq!(level.goal, level.proxy);
        let test = spec.generate(Split::Test, &mut rng).unwrap();
        assert_ne!(test.goal, test.proxy);
        assert_ne!(test.goal, Some(test.start));
        let goal = test.goal.unwrap();
        let off_route = mesa_goalmisgen::generate::off_the_proxy_route(&test, test.proxy.unwrap());
        assert!(
            off_route[test.index(goal)],
            "test coin {goal:?} on a shortest route to the end"
        );
    }
}

#[test]
fn keys_and_chests_counts_follow_the_split() {
    let config = common::config().keys_chests;
    let spec = EnvSpec::KeysChests {
        config: config.clone(),
    };
    let mut rng = StdRng::seed_from_u64(4);
    for _ in 0..100 {
        let train = spec.generate(Split::Train, &mut rng).unwrap();
        assert!((config.train_keys[0]..=config.train_keys[1]).contains(&train.keys.len()));
        assert!((config.train_chests[0]..=config.train_chests[1]).contains(&train.chests.len()));
        let test = spec.generate(Split::Test, &mut rng).unwrap();
        assert!((config.test_keys[0]..=config.test_keys[1]).contains(&test.keys.len()));
        assert!((config.test_chests[0]..=config.test_chests[1]).contains(&test.chests.len()));
    }
}

#[test]
fn bfs_planner_is_optimal_on_mazes_and_corridors() {
    let corridor = EnvSpec::Corridor {
        config: common::config().corridor,
        random_percent: 100.0,
    };
    for spec in [
        maze_spec(7, Region::FULL),
        maze_spec(9, Region::FULL),
        corridor,
    ] {
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..100 {
            let level = spec.generate(Split::Train, &mut rng).unwrap();
            let goal = level.goal.unwrap();
            let proxy = level.proxy.unwrap();
            assert!(goal == proxy || reachable_avoiding(&level, proxy)[level.index(goal)]);
            // The shortest route that does not step on the proxy on the way.
            let mut blocked = level.clone();
            if goal != proxy {
                let i = blocked.index(proxy);
                blocked.walls[i] = true;
            }
            let shortest = blocked.distances_from(level.start)[level.index(goal)].unwrap();
            let mut episode = Episode::new(level, 1000);
            assert_eq!(episode.run_expert().unwrap(), Outcome::TrueGoal);
            assert_eq!(episode.steps, shortest, "expert path is not shortest");
        }
    }
}

#[test]
fn keys_planner_opens_every_openable_chest_by_the_shortest_route() {
    let spec = EnvSpec::KeysChests {
        config: common::config().keys_chests,
    };
    let mut rng = StdRng::seed_from_u64(6);
    for split in [Split::Train, Split::Test] {
        for _ in 0..50 {
            let level = spec.generate(split, &mut rng).unwrap();
            let mut episode = Episode::new(level.clone(), 1000);
            assert_eq!(episode.run_expert().unwrap(), Outcome::TrueGoal);
            // With one key and one chest the optimum is dist(start, key) + dist(key, chest).
            if level.keys.len() == 1 && level.chests.len() == 1 {
                let to_key = level.distances_from(level.start)[level.index(level.keys[0])];
                let to_chest = level.distances_from(level.keys[0])[level.index(level.chests[0])];
                assert_eq!(
                    Some(episode.steps),
                    to_key.zip(to_chest).map(|(a, b)| a + b)
                );
            }
        }
    }
}

#[test]
fn runner_refuses_an_action_outside_the_action_set() {
    let spec = maze_spec(7, Region::Side(1));
    let level = spec
        .generate(Split::Train, &mut StdRng::seed_from_u64(7))
        .unwrap();
    let mut episode = Episode::new(level, 10);
    let before = episode.clone();
    let err = episode.step(4).unwrap_err();
    assert!(matches!(
        err,
        GoalMisgenError::InvalidAction {
            index: 4,
            n_actions: 4
        }
    ));
    assert_eq!(episode, before, "a refused action changed the episode");
    assert!(episode.step(usize::MAX).is_err());
    assert!(episode.step(0).is_ok());
}

#[test]
fn same_seed_same_levels() {
    let spec = maze_spec(9, Region::Side(3));
    let a = spec
        .generate(Split::Train, &mut StdRng::seed_from_u64(8))
        .unwrap();
    let b = spec
        .generate(Split::Train, &mut StdRng::seed_from_u64(8))
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn navigation_hints_are_first_moves_of_shortest_paths_and_match_the_planner_on_mazes() {
    use mesa_goalmisgen::obs;
    let spec = maze_spec(9, Region::FULL);
    let mut rng = StdRng::seed_from_u64(9);
    for _ in 0..50 {
        let level = spec.generate(Split::Test, &mut rng).unwrap();
        let from = level.start;
        let hints = obs::first_moves(&level, from);
        let dist = level.distances_from(from);
        // The hint's length is the BFS distance, wherever there is a hint.
        for (h, d) in obs::hints(&level, from).iter().zip(&dist) {
            if let Some(h) = h {
                assert_eq!(Some(h.distance), *d);
            }
        }
        for p in (0..level.n_cells()).map(|i| level.pos(i)) {
            let i = level.index(p);
            match (hints[i], dist[i]) {
                (None, d) => assert!(p == from || d.is_none(), "open cell {p:?} has no hint"),
                (Some(a), Some(d)) => {
                    // The hinted move leads one step closer to the cell.
                    let next = level.step(from, a);
                    assert_ne!(next, from);
                    assert_eq!(level.distances_from(next)[i], Some(d - 1), "cell {p:?}");
                }
                (Some(_), None) => panic!("unreachable cell {p:?} has a hint"),
            }
        }
        // The observation carries them: on a perfect maze, the goal cell's hint is the
        // planner's action (the one path to the goal never needs detouring round the proxy).
        let episode = Episode::new(level.clone(), 100);
        let tokens = obs::observe(&episode, obs::Mask::default());
        let goal = level.goal.unwrap();
        let token = tokens[level.index(goal)];
        assert_eq!(obs::content_of(token), Some(obs::GOAL));
        assert_eq!(obs::hint_of(token), episode.expert_action());
        assert_eq!(tokens.len(), obs::seq_len(level.n_cells()));
        assert_eq!(tokens[obs::query_position(level.n_cells())], obs::QUERY);
    }
}
