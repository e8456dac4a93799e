//! Sizes of the 1-D conditional U-Net, with LeRobot's `DiffusionConfig` field names.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Sizes of [`ConditionalUnet1d`](super::ConditionalUnet1d). Field names follow LeRobot's
/// `DiffusionConfig`; `action_dim` and `global_cond_dim` are derived (from `model.yaml`: the
/// number of joints, and the condition size plus the mode embedding size).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnetConfig {
    /// Channels of one waypoint (D in `(B, T, D)`): the number of joints.
    pub action_dim: usize,
    /// Size G of the global condition vector handed to the U-Net (`(B, G)`), 0 for none.
    pub global_cond_dim: usize,
    /// Channels per U-Net level; level `i > 0` runs at `T / 2^i` waypoints.
    pub down_dims: Vec<usize>,
    /// Temporal kernel of the residual blocks' convolutions (odd, padding `kernel_size / 2`).
    pub kernel_size: usize,
    /// GroupNorm groups of the residual blocks; divides every entry of `down_dims`. (The final
    /// block's GroupNorm always has 8 groups, as in LeRobot, so `down_dims[0]` is a multiple of 8.)
    pub n_groups: usize,
    /// Size of the diffusion step embedding (even, >= 4).
    pub diffusion_step_embed_dim: usize,
    /// FiLM with scale and bias (`true`, LeRobot's default) or bias only.
    pub use_film_scale_modulation: bool,
}

impl UnetConfig {
    /// Checks every size. Keys in errors are prefixed with `network.` as in `model.yaml`.
    pub fn validate(&self) -> Result<()> {
        if self.action_dim == 0 {
            return Err(Error::config("network.action_dim", "must be > 0"));
        }
        if self.down_dims.is_empty() {
            return Err(Error::config(
                "network.down_dims",
                "at least one level is required",
            ));
        }
        if self.n_groups == 0 {
            return Err(Error::config("network.n_groups", "must be > 0"));
        }
        for (i, dim) in self.down_dims.iter().enumerate() {
            if *dim == 0 || dim % self.n_groups != 0 {
                return Err(Error::config(
                    format!("network.down_dims[{i}]"),
                    format!(
                        "{dim} channels is not a positive multiple of n_groups = {}",
                        self.n_groups
                    ),
                ));
            }
        }
        // LeRobot's `final_conv.0` GroupNorm always has 8 groups (n_groups is not passed on).
        let groups = super::unet::FINAL_CONV_GROUPS;
        if self.down_dims[0] % groups != 0 {
            return Err(Error::config(
                "network.down_dims[0]",
                format!(
                    "{} channels is not a multiple of {groups}, the GroupNorm groups LeRobot's \
                     final_conv.0 always uses",
                    self.down_dims[0]
                ),
            ));
        }
        if self.kernel_size == 0 || self.kernel_size % 2 == 0 {
            return Err(Error::config(
                "network.kernel_size",
                format!(
                    "must be odd so that padding kernel_size/2 keeps the length, found {}",
                    self.kernel_size
                ),
            ));
        }
        // The sinusoidal embedding divides by (dim/2 - 1).
        if self.diffusion_step_embed_dim < 4 || self.diffusion_step_embed_dim % 2 != 0 {
            return Err(Error::config(
                "network.diffusion_step_embed_dim",
                format!(
                    "must be even and >= 4, found {}",
                    self.diffusion_step_embed_dim
                ),
            ));
        }
        Ok(())
    }

    /// Number of levels (`down_dims.len()`).
    pub fn levels(&self) -> usize {
        self.down_dims.len()
    }

    /// The factor the horizon must be a multiple of: `2^(levels - 1)`, the number the network
    /// needs (it downsamples and upsamples `levels - 1` times; an odd length would not come back
    /// to the skip connection's length). LeRobot's `DiffusionConfig` asks for the stricter
    /// `2^levels`, see [`UnetConfig::lerobot_horizon_multiple`].
    pub fn horizon_multiple(&self) -> usize {
        1 << self.levels().saturating_sub(1)
    }

    /// LeRobot's rule (`horizon % 2**len(down_dims) == 0` in `DiffusionConfig.__post_init__`):
    /// only needed to load this model's config into LeRobot itself.
    pub fn lerobot_horizon_multiple(&self) -> usize {
        1 << self.levels()
    }

    /// Checks that a horizon of `horizon` waypoints fits the network (a positive multiple of
    /// [`UnetConfig::horizon_multiple`]).
    pub fn check_horizon(&self, horizon: usize) -> Result<()> {
        let multiple = self.horizon_multiple();
        if horizon == 0 || horizon % multiple != 0 {
            return Err(Error::config(
                "horizon",
                format!(
                    "{horizon} is not a positive multiple of 2^(len(down_dims)-1) = {multiple}"
                ),
            ));
        }
        Ok(())
    }

    /// FiLM condition size: step embedding plus global condition.
    pub fn cond_dim(&self) -> usize {
        self.diffusion_step_embed_dim + self.global_cond_dim
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> UnetConfig {
        UnetConfig {
            action_dim: 2,
            global_cond_dim: 8,
            down_dims: vec![16, 32, 64],
            kernel_size: 5,
            n_groups: 8,
            diffusion_step_embed_dim: 32,
            use_film_scale_modulation: true,
        }
    }

    #[test]
    fn valid_config_passes() {
        cfg().validate().unwrap();
        assert_eq!(cfg().horizon_multiple(), 4);
        assert_eq!(cfg().lerobot_horizon_multiple(), 8);
        cfg().check_horizon(12).unwrap();
        cfg().check_horizon(16).unwrap();
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut c = cfg();
        c.down_dims[1] = 30;
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("network.down_dims[1]") && err.contains("30"),
            "{err}"
        );

        let mut c = cfg();
        c.n_groups = 4;
        c.down_dims[0] = 12;
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("network.down_dims[0]") && err.contains("final_conv"),
            "{err}"
        );

        let mut c = cfg();
        c.kernel_size = 4;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("kernel_size"));

        let mut c = cfg();
        c.diffusion_step_embed_dim = 2;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("diffusion_step_embed_dim"));

        let mut c = cfg();
        c.down_dims.clear();
        assert!(c.validate().unwrap_err().to_string().contains("down_dims"));

        let mut c = cfg();
        c.n_groups = 0;
        assert!(c.validate().unwrap_err().to_string().contains("n_groups"));

        let err = cfg().check_horizon(10).unwrap_err().to_string();
        assert!(
            err.contains("horizon") && err.contains("10") && err.contains('4'),
            "{err}"
        );
        assert!(cfg().check_horizon(0).is_err());
    }
}
