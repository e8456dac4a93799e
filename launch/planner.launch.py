"""Start the diffusion planner node.

    ros2 launch diffusion_planner planner.launch.py [model:=DIR] [params_file:=FILE]
        [use_sim_time:=true] [namespace:=NS] [controller_topic:=TOPIC]

The node publishes `joint_trajectory`, remapped here to the JointTrajectoryController's topic.
Parameters: docs/PARAMETERS.md. planner.launch.xml is the same launch in XML.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'diffusion_planner'


def generate_launch_description():
    share = FindPackageShare(PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument(
            'model',
            default_value=PathJoinSubstitution([share, 'models', 'planar_arm']),
            description='Model folder (model.yaml + model.safetensors); sets model_path',
        ),
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution([share, 'config', 'planar_arm.yaml']),
            description='Node parameter file (ros__parameters)',
        ),
        DeclareLaunchArgument(
            'use_sim_time',
            default_value='false',
            choices=['true', 'false'],
            description='Use /clock (Gazebo, bag play) for timers and stamps',
        ),
        DeclareLaunchArgument(
            'namespace',
            default_value='',
            description='Namespace of the node and its relative topics',
        ),
        DeclareLaunchArgument(
            'controller_topic',
            default_value='/joint_trajectory_controller/joint_trajectory',
            description='Where the trajectories go (the JointTrajectoryController topic)',
        ),
        Node(
            package=PACKAGE,
            executable='diffusion_planner',
            name='diffusion_planner',
            namespace=LaunchConfiguration('namespace'),
            output='screen',
            parameters=[
                LaunchConfiguration('params_file'),
                {
                    'model_path': ParameterValue(LaunchConfiguration('model'), value_type=str),
                    'use_sim_time': ParameterValue(
                        LaunchConfiguration('use_sim_time'), value_type=bool),
                },
            ],
            remappings=[('joint_trajectory', LaunchConfiguration('controller_topic'))],
        ),
    ])
