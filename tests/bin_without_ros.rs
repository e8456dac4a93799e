//! The ROS binaries built without feature `ros` (`cargo test --no-default-features`): they are
//! built in every feature set, so that colcon's cargo-ament-build installs them (it skips
//! binaries with `required-features`), and without ROS they only say what is missing and exit
//! with status 1.
#![cfg(not(feature = "ros"))]

use std::process::Command;

fn run(binary: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(binary)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {binary}: {e}"));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_says_ros_is_missing(name: &str, binary: &str) {
    for args in [
        &[][..],
        &["--check-params", "--ros-args", "-p", "seed:=1"][..],
    ] {
        let (code, stdout, stderr) = run(binary, args);
        assert_eq!(
            code,
            Some(1),
            "{name} {args:?}: stdout {stdout:?} stderr {stderr:?}"
        );
        assert!(stdout.is_empty(), "{name}: {stdout:?}");
        assert!(
            stderr.starts_with(&format!("{name}: "))
                && stderr.contains("built without the cargo feature `ros`"),
            "{name}: {stderr:?}"
        );
    }
}

#[test]
fn the_node_binary_without_ros_names_the_missing_feature_and_fails() {
    assert_says_ros_is_missing("diffusion_planner", env!("CARGO_BIN_EXE_diffusion_planner"));
}

#[test]
fn the_simulator_binary_without_ros_names_the_missing_feature_and_fails() {
    assert_says_ros_is_missing(
        "diffusion_planner_sim",
        env!("CARGO_BIN_EXE_diffusion_planner_sim"),
    );
}
