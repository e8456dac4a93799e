"""Gazebo Harmonic: the planar arm under ros2_control (gz_ros2_control) and the diffusion
planner on Gazebo's clock.

    ros2 launch diffusion_planner gazebo.launch.py [model:=DIR] [params_file:=FILE]
        [world:=empty.sdf] [initial_shoulder:=RAD] [initial_elbow:=RAD]

Needs, besides this package: ros_gz_sim, ros_gz_bridge, gz_ros2_control, robot_state_publisher,
controller_manager, joint_state_broadcaster, joint_trajectory_controller and xacro (Jazzy:
`ros-jazzy-ros-gz ros-jazzy-gz-ros2-control ros-jazzy-ros2-controllers ros-jazzy-xacro`).

Order: Gazebo starts with the world, robot_state_publisher publishes the URDF
(urdf/planar_arm.urdf.xacro), `create` spawns it (the gz_ros2_control plugin in the URDF starts
the controller manager with config/controllers.yaml), then the spawners start
joint_state_broadcaster and, after it, joint_trajectory_controller. /clock comes from Gazebo
through ros_gz_bridge; the planner uses it (use_sim_time) and publishes to the controller.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import (
    Command,
    FindExecutable,
    LaunchConfiguration,
    PathJoinSubstitution,
)
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'diffusion_planner'
CONTROLLER_TOPIC = '/joint_trajectory_controller/joint_trajectory'
ROBOT_NAME = 'planar_arm'


def generate_launch_description():
    share = FindPackageShare(PACKAGE)
    controllers = PathJoinSubstitution([share, 'config', 'controllers.yaml'])
    robot_description = ParameterValue(
        Command([
            FindExecutable(name='xacro'), ' ',
            PathJoinSubstitution([share, 'urdf', 'planar_arm.urdf.xacro']),
            ' controllers_file:=', controllers,
            ' initial_shoulder:=', LaunchConfiguration('initial_shoulder'),
            ' initial_elbow:=', LaunchConfiguration('initial_elbow'),
        ]),
        value_type=str,
    )
    gazebo = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([FindPackageShare('ros_gz_sim'), 'launch', 'gz_sim.launch.py'])),
        launch_arguments=[('gz_args', ['-r -v 3 ', LaunchConfiguration('world')])],
    )
    robot_state_publisher = Node(
        package='robot_state_publisher',
        executable='robot_state_publisher',
        output='screen',
        parameters=[{'robot_description': robot_description, 'use_sim_time': True}],
    )
    spawn = Node(
        package='ros_gz_sim',
        executable='create',
        output='screen',
        arguments=['-topic', 'robot_description', '-name', ROBOT_NAME, '-allow_renaming', 'true'],
    )
    joint_state_broadcaster = Node(
        package='controller_manager',
        executable='spawner',
        output='screen',
        arguments=['joint_state_broadcaster'],
    )
    joint_trajectory_controller = Node(
        package='controller_manager',
        executable='spawner',
        output='screen',
        arguments=['joint_trajectory_controller', '--param-file', controllers],
    )
    clock_bridge = Node(
        package='ros_gz_bridge',
        executable='parameter_bridge',
        output='screen',
        arguments=['/clock@rosgraph_msgs/msg/Clock[gz.msgs.Clock'],
    )
    planner = Node(
        package=PACKAGE,
        executable='diffusion_planner',
        name='diffusion_planner',
        output='screen',
        parameters=[
            LaunchConfiguration('params_file'),
            {
                'model_path': ParameterValue(LaunchConfiguration('model'), value_type=str),
                'use_sim_time': True,
            },
        ],
        remappings=[('joint_trajectory', CONTROLLER_TOPIC)],
    )
    return LaunchDescription([
        DeclareLaunchArgument(
            'model',
            default_value=PathJoinSubstitution([share, 'models', 'planar_arm']),
            description='Model folder (model.yaml + model.safetensors), or `synthetic`',
        ),
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution([share, 'config', 'planar_arm.yaml']),
            description='Node parameter file (ros__parameters)',
        ),
        DeclareLaunchArgument(
            'world',
            default_value='empty.sdf',
            description='Gazebo world (file name or path)',
        ),
        DeclareLaunchArgument(
            'initial_shoulder', default_value='0.0', description='Start angle, radians'),
        DeclareLaunchArgument(
            'initial_elbow', default_value='0.0', description='Start angle, radians'),
        gazebo,
        robot_state_publisher,
        spawn,
        clock_bridge,
        RegisterEventHandler(OnProcessExit(target_action=spawn, on_exit=[joint_state_broadcaster])),
        RegisterEventHandler(OnProcessExit(
            target_action=joint_state_broadcaster, on_exit=[joint_trajectory_controller])),
        planner,
    ])
