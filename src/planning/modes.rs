//! Grouping candidates into modes without task labels: deterministic average-linkage
//! agglomerative clustering of the *valid* candidates on the mean waypoint distance (joint space,
//! radians), merging while the closest pair of clusters is within a threshold.
//!
//! Mode ids are ordered by mass (number of valid members, largest first; ties: the mode with the
//! smallest member index first). Invalid candidates form no modes; for display each one is
//! assigned to the mode with the smallest mean distance to its members (flagged as invalid in
//! [`Mode::assigned_invalid`]).

use serde::Serialize;

use crate::robot::JointPath;

/// One mode: a cluster of valid candidates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mode {
    /// Position in the mode list (0 = most valid members).
    pub id: usize,
    /// Valid candidate indices, ascending.
    pub members: Vec<usize>,
    /// Invalid candidates whose nearest mode this is (display only), ascending.
    pub assigned_invalid: Vec<usize>,
}

/// The result of clustering a batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Clustering {
    pub modes: Vec<Mode>,
    /// Per candidate: its mode id (valid candidates) or the nearest mode (invalid ones); `None`
    /// when there is no mode or the path is not finite.
    pub assignment: Vec<Option<usize>>,
}

/// Mean Euclidean distance between corresponding waypoints of two paths of equal shape (rad);
/// infinite when the shapes differ, NaN for non-finite paths.
pub fn path_distance_rad(a: &JointPath, b: &JointPath) -> f64 {
    a.mean_waypoint_distance_rad(b).unwrap_or(f64::INFINITY)
}

/// Clusters the candidates `paths` whose `valid` flag is set (see the module docs).
/// `threshold_rad`: two clusters merge while their average-linkage distance is <= it.
pub fn cluster(paths: &[JointPath], valid: &[bool], threshold_rad: f64) -> Clustering {
    let items: Vec<usize> = (0..paths.len())
        .filter(|&i| valid.get(i).copied().unwrap_or(false))
        .collect();
    let n = items.len();
    // Pairwise distances between valid items (symmetric, n × n).
    let mut item_distance = vec![0.0; n * n];
    for a in 0..n {
        for b in a + 1..n {
            let d = path_distance_rad(&paths[items[a]], &paths[items[b]]);
            item_distance[a * n + b] = d;
            item_distance[b * n + a] = d;
        }
    }
    // Active clusters (member positions into `items`) and their linkage distances.
    let mut clusters: Vec<Option<Vec<usize>>> = (0..n).map(|i| Some(vec![i])).collect();
    let mut linkage = item_distance.clone();
    loop {
        let mut best: Option<(usize, usize, f64)> = None;
        for a in 0..n {
            if clusters[a].is_none() {
                continue;
            }
            for b in a + 1..n {
                if clusters[b].is_none() {
                    continue;
                }
                let d = linkage[a * n + b];
                // Strictly smaller wins, so ties keep the lowest (a, b): deterministic.
                if d <= threshold_rad && best.is_none_or(|(_, _, bd)| d < bd) {
                    best = Some((a, b, d));
                }
            }
        }
        let Some((a, b, _)) = best else { break };
        let (Some(size_a), Some(size_b)) = (
            clusters[a].as_ref().map(Vec::len),
            clusters[b].as_ref().map(Vec::len),
        ) else {
            break;
        };
        // Lance–Williams update for average linkage.
        for c in 0..n {
            if c == a || c == b || clusters[c].is_none() {
                continue;
            }
            let d = (size_a as f64 * linkage[a * n + c] + size_b as f64 * linkage[b * n + c])
                / (size_a + size_b) as f64;
            linkage[a * n + c] = d;
            linkage[c * n + a] = d;
        }
        let moved = clusters[b].take().unwrap_or_default();
        if let Some(target) = clusters[a].as_mut() {
            target.extend(moved);
        }
    }
    let mut groups: Vec<Vec<usize>> = clusters
        .into_iter()
        .flatten()
        .map(|members| {
            let mut candidates: Vec<usize> = members.into_iter().map(|i| items[i]).collect();
            candidates.sort_unstable();
            candidates
        })
        .collect();
    groups.sort_by(|x, y| y.len().cmp(&x.len()).then(x[0].cmp(&y[0])));

    let mut assignment = vec![None; paths.len()];
    let mut modes: Vec<Mode> = groups
        .into_iter()
        .enumerate()
        .map(|(id, members)| {
            for &m in &members {
                assignment[m] = Some(id);
            }
            Mode {
                id,
                members,
                assigned_invalid: Vec::new(),
            }
        })
        .collect();
    for (candidate, path) in paths.iter().enumerate() {
        if assignment[candidate].is_some() {
            continue;
        }
        let nearest = modes
            .iter()
            .map(|mode| {
                let sum: f64 = mode
                    .members
                    .iter()
                    .map(|&m| path_distance_rad(path, &paths[m]))
                    .sum();
                (mode.id, sum / mode.members.len() as f64)
            })
            .filter(|(_, d)| d.is_finite())
            .fold(None, |best: Option<(usize, f64)>, (id, d)| match best {
                Some((_, bd)) if bd <= d => best,
                _ => Some((id, d)),
            });
        if let Some((id, _)) = nearest {
            assignment[candidate] = Some(id);
            modes[id].assigned_invalid.push(candidate);
        }
    }
    Clustering { modes, assignment }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundle of `count` 1-joint paths bending by `bend` in the middle, spread by `spread`.
    fn bundle(count: usize, bend: f64, spread: f64) -> Vec<JointPath> {
        (0..count)
            .map(|k| {
                let offset = spread * (k as f64 / count.max(2) as f64 - 0.5);
                let waypoints: Vec<Vec<f64>> = (0..10)
                    .map(|t| {
                        let s = t as f64 / 9.0;
                        vec![s, (bend + offset) * (std::f64::consts::PI * s).sin()]
                    })
                    .collect();
                JointPath::from_waypoints(&waypoints).unwrap()
            })
            .collect()
    }

    #[test]
    fn two_bundles_are_separated_and_one_is_merged() {
        let mut paths = bundle(5, -0.8, 0.1);
        paths.extend(bundle(7, 0.8, 0.1));
        let valid = vec![true; 12];
        let clustering = cluster(&paths, &valid, 0.2);
        assert_eq!(clustering.modes.len(), 2);
        // Ordered by mass: the 7-path bundle is mode 0.
        assert_eq!(clustering.modes[0].members, (5..12).collect::<Vec<_>>());
        assert_eq!(clustering.modes[1].members, (0..5).collect::<Vec<_>>());

        let one = bundle(9, 0.3, 0.15);
        let clustering = cluster(&one, &[true; 9], 0.2);
        assert_eq!(clustering.modes.len(), 1);
        assert_eq!(clustering.modes[0].members.len(), 9);
    }

    #[test]
    fn invalid_candidates_join_the_nearest_mode_for_display() {
        let mut paths = bundle(4, -0.8, 0.1);
        paths.extend(bundle(4, 0.8, 0.1));
        paths.extend(bundle(1, 0.6, 0.0)); // closer to the +0.8 bundle
        let mut valid = vec![true; 9];
        valid[8] = false;
        valid[0] = false;
        let clustering = cluster(&paths, &valid, 0.2);
        assert_eq!(clustering.modes.len(), 2);
        // Mode 0: the +0.8 bundle (4 valid) beats the -0.8 bundle (3 valid).
        assert_eq!(clustering.modes[0].members, vec![4, 5, 6, 7]);
        assert_eq!(clustering.modes[0].assigned_invalid, vec![8]);
        assert_eq!(clustering.modes[1].assigned_invalid, vec![0]);
        assert_eq!(clustering.assignment[8], Some(0));
        assert_eq!(clustering.assignment[0], Some(1));
        // No valid candidate: no modes, nothing assigned.
        let none = cluster(&paths, &[false; 9], 0.2);
        assert!(none.modes.is_empty() && none.assignment.iter().all(Option::is_none));
    }

    #[test]
    fn clustering_is_deterministic_under_ties() {
        // Three equally spaced single-waypoint paths: the first pair merges first.
        let paths: Vec<JointPath> = [0.0, 1.0, 2.0]
            .iter()
            .map(|&v| JointPath::from_waypoints(&[vec![v]]).unwrap())
            .collect();
        let clustering = cluster(&paths, &[true; 3], 1.0);
        assert_eq!(clustering.modes[0].members, vec![0, 1]);
        assert_eq!(clustering.modes[1].members, vec![2]);
    }
}
