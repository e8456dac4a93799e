//! Node creation: the r2r context, the node and its validated parameters.

use crate::ros::params::{NodeParams, ParamMap, ParamValue};
use crate::{Error, Result};

/// The node's default name (remappable with `--ros-args -r __node:=...`).
pub const NODE_NAME: &str = "diffusion_planner";

/// Creates the ROS context from the process arguments (`--ros-args ...`) and the node
/// `diffusion_planner` in `namespace` ("" = the root or what `__ns:=` says), then reads and
/// validates its parameters (`--params-file`, `-p`). Fails naming the first bad key.
pub fn create_node(namespace: &str) -> Result<(r2r::Node, NodeParams)> {
    let ctx = create_context()?;
    let node = r2r::Node::create(ctx, NODE_NAME, namespace)
        .map_err(|e| ros_error("creating the node", e))?;
    let params = NodeParams::from_map(&read_params(&node))?;
    Ok((node, params))
}

/// `r2r::Context::create`, which panics when rcl rejects the arguments (e.g. a parameter file
/// with a syntax error or a list of mixed types): the panic becomes an error with rcl's message.
/// The default panic hook is silenced meanwhile so the message is reported once.
pub(crate) fn create_context() -> Result<r2r::Context> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let created = std::panic::catch_unwind(r2r::Context::create);
    std::panic::set_hook(hook);
    match created {
        Ok(ctx) => ctx.map_err(|e| ros_error("creating the ROS context", e)),
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            Err(Error::Invalid(format!(
                "rcl rejected the command-line arguments: {message}"
            )))
        }
    }
}

pub(crate) fn read_params(node: &r2r::Node) -> ParamMap {
    let params = match node.params.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    params
        .iter()
        .map(|(key, p)| (key.clone(), (&p.value).into()))
        .collect()
}

pub(crate) fn ros_error(what: &str, e: r2r::Error) -> Error {
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
