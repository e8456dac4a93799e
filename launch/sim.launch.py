"""Start the simulated arm and the diffusion planner node: a closed loop without a robot.

    ros2 launch diffusion_planner sim.launch.py [model:=DIR|synthetic] [use_sim_time:=true]
        [params_file:=FILE] [sim_params_file:=FILE]

The simulator (diffusion_planner_sim, docs/SIM.md) plays a JointTrajectoryController on a
planar arm: it subscribes to /joint_trajectory_controller/joint_trajectory, publishes
/joint_states and reports collisions and goals on /diagnostics. With use_sim_time:=true it
publishes /clock (it owns the time) and the node follows it. Publish a goal (PoseStamped on
/goal) and obstacles (MarkerArray on /obstacles); both nodes listen to them.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'diffusion_planner'
CONTROLLER_TOPIC = '/joint_trajectory_controller/joint_trajectory'


def generate_launch_description():
    share = FindPackageShare(PACKAGE)
    model = LaunchConfiguration('model')
    use_sim_time = ParameterValue(LaunchConfiguration('use_sim_time'), value_type=bool)
    return LaunchDescription([
        DeclareLaunchArgument(
            'model',
            default_value=PathJoinSubstitution([share, 'models', 'planar_arm']),
            description='Model folder (or `synthetic`): the planner model and the robot',
        ),
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution([share, 'config', 'planar_arm.yaml']),
            description='Node parameter file (ros__parameters)',
        ),
        DeclareLaunchArgument(
            'sim_params_file',
            default_value=PathJoinSubstitution([share, 'config', 'sim_planar_arm.yaml']),
            description='Simulator parameter file (ros__parameters)',
        ),
        DeclareLaunchArgument(
            'use_sim_time',
            default_value='false',
            choices=['true', 'false'],
            description='The simulator publishes /clock and the node runs on it',
        ),
        Node(
            package=PACKAGE,
            executable='diffusion_planner_sim',
            name='diffusion_planner_sim',
            output='screen',
            parameters=[
                LaunchConfiguration('sim_params_file'),
                {
                    'model_path': ParameterValue(model, value_type=str),
                    'publish_clock': use_sim_time,
                },
            ],
        ),
        Node(
            package=PACKAGE,
            executable='diffusion_planner',
            name='diffusion_planner',
            output='screen',
            parameters=[
                LaunchConfiguration('params_file'),
                {
                    'model_path': ParameterValue(model, value_type=str),
                    'use_sim_time': use_sim_time,
                },
            ],
            remappings=[('joint_trajectory', CONTROLLER_TOPIC)],
        ),
    ])
