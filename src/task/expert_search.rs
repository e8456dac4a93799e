//! The result of the expert's grid search (costs and parents per (signature, cell) state) and
//! the priority-queue entry of the search.

use std::cmp::Ordering;

use super::*;

pub(super) struct Search {
    pub(super) start: Config2,
    pub(super) cost: Vec<f64>,
    pub(super) parent: Vec<usize>,
}

impl Search {
    /// For every signature that reaches `goal`, the shortest raw grid path to it.
    pub(super) fn paths_to(
        &self,
        grid: &Grid,
        problem: &ExpertProblem<'_>,
        islands: &Islands,
        goal: Config2,
        config: &ExpertConfig,
    ) -> Vec<(Vec<i8>, Vec<Config2>)> {
        let nodes = grid.n * grid.n;
        let mut best: Vec<Option<(f64, usize)>> = vec![None; islands.codes()];
        for node in grid.attach(problem, goal, config.check_step_rad) {
            let here = grid.config(node);
            for code in 0..islands.codes() {
                let state = code * nodes + node;
                let Some(final_code) = islands.step_code(code, here, goal) else {
                    continue;
                };
                let c = self.cost[state] + dist(here, goal);
                if c.is_finite() && best[final_code].is_none_or(|(b, _)| c < b) {
                    best[final_code] = Some((c, state));
                }
            }
        }
        best.iter()
            .enumerate()
            .filter_map(|(code, entry)| entry.map(|(_, state)| (code, state)))
            .map(|(code, mut state)| {
                let mut nodes_back = Vec::new();
                while state != usize::MAX {
                    nodes_back.push(grid.config(state % nodes));
                    state = self.parent[state];
                }
                nodes_back.reverse();
                let mut path = Vec::with_capacity(nodes_back.len() + 2);
                path.push(self.start);
                path.extend(nodes_back);
                path.push(goal);
                (islands.decode(code), path)
            })
            .collect()
    }
}

#[derive(PartialEq)]
pub(super) struct Entry {
    pub(super) cost: f64,
    pub(super) state: usize,
}

impl Eq for Entry {}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .cost
            .total_cmp(&self.cost)
            .then_with(|| self.state.cmp(&other.state))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
