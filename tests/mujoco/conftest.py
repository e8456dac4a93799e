"""The MuJoCo simulator's tests: `source scripts/ros-env.sh; source scripts/mujoco-env.sh;
"$DP_MUJOCO_PYTHON" -m pytest tests/mujoco` (the unit tests need only mujoco, numpy and PyYAML;
test_closed_loop_dds.py needs rclpy and the node binary)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tools'))
