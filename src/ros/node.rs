//! Node creation: the r2r context, the node and its validated parameters.

use crate::ros::params::{NodeParams, ParamMap, ParamValue};
use crate::{Error, Result};

/// The node's default name (remappable with `--ros-args -r __node:=...`).
pub const NODE_NAME: &str = "diffusion_planner";

/// Creates the ROS context from the process arguments (`--ros-args ...`) and the node
/// `diffusion_planner` in `namespace` ("" = the root or what `__ns:=` says), then reads and
/// validates its parameters (`--params-file`, `-p`). Fails naming the first bad key.
pub fn create_node(namespace: &str) -> Result<(r2r::Node, NodeParams)> {
    let ctx = r2r::Context::create().map_err(|e| ros_error("creating the ROS context", e))?;
    let node = r2r::Node::create(ctx, NODE_NAME, namespace)
        .map_err(|e| ros_error("creating the node", e))?;
    let params = NodeParams::from_map(&read_params(&node))?;
    Ok((node, params))
}

fn read_params(node: &r2r::Node) -> ParamMap {
    let params = match node.params.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    params
        .iter()
        .map(|(key, p)| (key.clone(), (&p.value).into()))
        .collect()
}

fn ros_error(what: &str, e: r2r::Error) -> Error {
    Error::Invalid(format!("{what} failed: {e}"))
}

impl From<&r2r::ParameterValue> for ParamValue {
    fn from(value: &r2r::ParameterValue) -> Self {
        use r2r::ParameterValue as R;
        match value {
            R::NotSet => ParamValue::NotSet,
            R::Bool(v) => ParamValue::Bool(*v),
            R::Integer(v) => ParamValue::Integer(*v),
            R::Double(v) => ParamValue::Double(*v),
            R::String(v) => ParamValue::String(v.clone()),
            R::ByteArray(v) => ParamValue::ByteArray(v.clone()),
            R::BoolArray(v) => ParamValue::BoolArray(v.clone()),
            R::IntegerArray(v) => ParamValue::IntegerArray(v.clone()),
            R::DoubleArray(v) => ParamValue::DoubleArray(v.clone()),
            R::StringArray(v) => ParamValue::StringArray(v.clone()),
        }
    }
}
