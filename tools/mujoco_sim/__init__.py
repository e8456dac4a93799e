"""The MuJoCo simulator behind the controller interface (docs/SIM.md, "MuJoCo"): a
JointTrajectoryController port (`jtc`), the planar arm as an MJCF with obstacles (`arm`), one
ros2_control cycle in physics (`simulation`), its parameters (`config`), the rclpy node
(`node`) and the closed loop over DDS (`closed_loop`)."""
