//! Collision counting of the simulated arm against circular obstacles: episodes (a collision
//! that lasts many updates counts once) and the minimum clearance.
//!
//! At each update the arm is in collision when the configuration overlaps an obstacle
//! ([`PlanarArm::collision`]) or the straight joint-space motion since the previous update
//! touches one ([`PlanarArm::swept_collision`], so a fast link cannot pass through a thin
//! obstacle between two updates). An episode starts when the arm goes from free to in
//! collision. The clearance is that of the configuration at each update (metres, negative when
//! overlapping); the minimum is over all updates with obstacles.

use crate::robot::{CircleObstacle, PlanarArm};

/// See the module docs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollisionMonitor {
    /// Collision episodes so far.
    pub episodes: u64,
    /// Updates spent in collision.
    pub colliding_updates: u64,
    pub in_collision: bool,
    /// Clearance at the last update; `None` without obstacles.
    pub clearance_m: Option<f64>,
    /// The smallest clearance over all updates; `None` while there were no obstacles.
    pub min_clearance_m: Option<f64>,
}

impl CollisionMonitor {
    /// Checks the motion from `previous` (if any) to `q` (robot order) against `obstacles`;
    /// returns whether the arm is in collision.
    pub fn update(
        &mut self,
        arm: &PlanarArm,
        previous: Option<&[f64]>,
        q: &[f64],
        obstacles: &[CircleObstacle],
    ) -> bool {
        self.clearance_m = arm.clearance(q, obstacles).map(|c| c.clearance_m);
        if let Some(c) = self.clearance_m {
            self.min_clearance_m = Some(self.min_clearance_m.map_or(c, |m| m.min(c)));
        }
        let swept = previous.is_some_and(|p| arm.swept_collision(p, q, obstacles).is_some());
        let colliding = arm.collision(q, obstacles).is_some() || swept;
        if colliding {
            self.colliding_updates += 1;
            if !self.in_collision {
                self.episodes += 1;
            }
        }
        self.in_collision = colliding;
        colliding
    }
}
