//! The reference task: a planar 2-link arm around a circular obstacle. Scene sampling, geometric
//! mode labels, and the expert planner that produces the demonstrations.

pub mod expert;
