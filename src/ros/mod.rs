//! The ROS 2 node (r2r). The only module that touches ROS types.
