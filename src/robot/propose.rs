//! Proposes collision spheres from a URDF's collision geometry, for robots that ship none
//! (`dplan robot spheres --propose`).
//!
//! Every geometry becomes a box in its own frame (a box as is, a cylinder its bounding box, a
//! sphere itself, a mesh the bounding box of its vertices, read from `.obj` or `.stl`); the box
//! is cut into `n` equal slabs along its longest side, `n = ceil(longest / middle side)`, and each
//! slab gets the sphere through its corners: an over-approximation (never smaller than the
//! geometry), conservative by up to the slab's half diagonal. Review the result (`dplan robot show`).

use std::path::{Path, PathBuf};

use nalgebra::Vector3;

use super::frame::Frame;
use super::spheres::SphereSpec;
use super::urdf::{Geometry, Urdf};
use crate::{Error, Result};

/// Spheres for every collision geometry of the links in `links` (all links when `None`).
/// `urdf_dir` resolves relative and `package://` mesh names.
pub fn propose_spheres(
    urdf: &Urdf,
    links: Option<&[String]>,
    urdf_dir: &Path,
) -> Result<Vec<SphereSpec>> {
    let mut out = Vec::new();
    for link in &urdf.links {
        if let Some(names) = links {
            if !names.contains(&link.name) {
                continue;
            }
        }
        for collision in &link.collisions {
            let origin = Frame::from_isometry(&collision.origin);
            let (center, half) = match &collision.geometry {
                Geometry::Sphere { radius } => {
                    let c = origin.translation;
                    out.push(SphereSpec {
                        link: link.name.clone(),
                        center: [c.x, c.y, c.z],
                        radius: *radius,
                    });
                    continue;
                }
                Geometry::Box { size } => (Vector3::zeros(), Vector3::from(*size) / 2.0),
                Geometry::Cylinder { radius, length } => (
                    Vector3::zeros(),
                    Vector3::new(*radius, *radius, length / 2.0),
                ),
                Geometry::Mesh { filename, scale } => {
                    let path = resolve_mesh(filename, urdf_dir).ok_or_else(|| {
                        Error::robot_file(
                            &urdf.source,
                            format!(
                                "<link name=\"{}\"> <mesh filename=\"{filename}\">",
                                link.name
                            ),
                            format!(
                                "mesh not found (looked relative to {} and its parent)",
                                urdf_dir.display()
                            ),
                        )
                    })?;
                    let (lo, hi) = mesh_bounds(&path)?;
                    let s = Vector3::from(*scale);
                    let (a, b) = (lo.component_mul(&s), hi.component_mul(&s));
                    let (lo, hi) = (a.inf(&b), a.sup(&b));
                    ((lo + hi) / 2.0, (hi - lo) / 2.0)
                }
            };
            for (c, r) in box_spheres(&center, &half) {
                let p = origin.point(&c);
                out.push(SphereSpec {
                    link: link.name.clone(),
                    center: [p.x, p.y, p.z],
                    radius: r,
                });
            }
        }
    }
    Ok(out)
}

/// Spheres covering the box `center ± half` (box frame).
fn box_spheres(center: &Vector3<f64>, half: &Vector3<f64>) -> Vec<(Vector3<f64>, f64)> {
    let mut order = [0usize, 1, 2];
    order.sort_by(|&a, &b| half[b].total_cmp(&half[a]));
    let (long, mid) = (order[0], order[1]);
    let n = ((half[long] / half[mid].max(1e-6)).ceil() as usize).clamp(1, 16);
    let slab = 2.0 * half[long] / n as f64;
    let mut slab_half = *half;
    slab_half[long] = slab / 2.0;
    let radius = slab_half.norm();
    (0..n)
        .map(|i| {
            let mut c = *center;
            c[long] += -half[long] + slab * (i as f64 + 0.5);
            (c, radius)
        })
        .collect()
}

/// Finds a mesh file: `package://PKG/rest` and relative names are tried below the URDF's
/// folder and its parent (with and without `PKG`); `file://` paths as given.
pub fn resolve_mesh(filename: &str, urdf_dir: &Path) -> Option<PathBuf> {
    if let Some(p) = filename.strip_prefix("file://") {
        let p = PathBuf::from(p);
        return p.exists().then_some(p);
    }
    let rest = filename.strip_prefix("package://").unwrap_or(filename);
    let without_pkg = rest.split_once('/').map(|(_, r)| r);
    let mut candidates = vec![urdf_dir.join(rest)];
    if let Some(r) = without_pkg {
        candidates.push(urdf_dir.join(r));
    }
    if let Some(parent) = urdf_dir.parent() {
        candidates.push(parent.join(rest));
        if let Some(r) = without_pkg {
            candidates.push(parent.join(r));
        }
    }
    candidates.into_iter().find(|p| p.exists())
}

/// Bounding box of a mesh's vertices (`.obj` text or `.stl` binary/ASCII).
pub fn mesh_bounds(path: &Path) -> Result<(Vector3<f64>, Vector3<f64>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let name = path.display().to_string();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut lo = Vector3::repeat(f64::INFINITY);
    let mut hi = Vector3::repeat(f64::NEG_INFINITY);
    let mut add = |v: Vector3<f64>| {
        lo = lo.inf(&v);
        hi = hi.sup(&v);
    };
    let parse3 = |parts: &[&str], line: usize| -> Result<Vector3<f64>> {
        let mut v = [0.0; 3];
        for (o, p) in v.iter_mut().zip(parts) {
            *o = p
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    Error::robot_file(
                        &name,
                        format!("line {line}"),
                        format!("expected a finite number, found `{p}`"),
                    )
                })?;
        }
        Ok(Vector3::from(v))
    };
    let ascii = |text: &str, prefix: &str, add: &mut dyn FnMut(Vector3<f64>)| -> Result<()> {
        for (i, line) in text.lines().enumerate() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if parts.first() == Some(&prefix) {
                if parts.len() < 4 {
                    return Err(Error::robot_file(
                        &name,
                        format!("line {}", i + 1),
                        "expected three coordinates",
                    ));
                }
                add(parse3(&parts[1..4], i + 1)?);
            }
        }
        Ok(())
    };
    match ext.as_str() {
        "obj" => ascii(&String::from_utf8_lossy(&bytes), "v", &mut add)?,
        "stl" => {
            let binary_len = bytes
                .get(80..84)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
            match binary_len {
                Some(n) if bytes.len() == 84 + 50 * n => {
                    for t in 0..n {
                        for k in 0..3 {
                            let o = 84 + 50 * t + 12 + 12 * k;
                            let f = |i: usize| {
                                let b = &bytes[o + 4 * i..o + 4 * i + 4];
                                f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64
                            };
                            add(Vector3::new(f(0), f(1), f(2)));
                        }
                    }
                }
                _ => ascii(&String::from_utf8_lossy(&bytes), "vertex", &mut add)?,
            }
        }
        other => {
            return Err(Error::robot_file(
                &name,
                "mesh",
                format!("unsupported mesh format `.{other}` (expected .obj or .stl)"),
            ))
        }
    }
    if !(lo.iter().all(|v| v.is_finite()) && hi.iter().all(|v| v.is_finite())) {
        return Err(Error::robot_file(&name, "mesh", "no vertices found"));
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_spheres_cover_the_corners() {
        let half = Vector3::new(0.3, 0.05, 0.1);
        let spheres = box_spheres(&Vector3::zeros(), &half);
        assert_eq!(spheres.len(), 3);
        for sx in [-1.0, 1.0] {
            for sy in [-1.0, 1.0] {
                for sz in [-1.0, 1.0] {
                    let corner = Vector3::new(sx * 0.3, sy * 0.05, sz * 0.1);
                    assert!(spheres
                        .iter()
                        .any(|(c, r)| (corner - c).norm() <= r + 1e-12));
                }
            }
        }
    }

    #[test]
    fn ascii_stl_and_obj_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let stl = dir.path().join("a.stl");
        std::fs::write(
            &stl,
            "solid a\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 0 2 -1\nendloop\nendfacet\nendsolid a\n",
        )
        .unwrap();
        let (lo, hi) = mesh_bounds(&stl).unwrap();
        assert_eq!(
            (lo, hi),
            (Vector3::new(0.0, 0.0, -1.0), Vector3::new(1.0, 2.0, 0.0))
        );
        let obj = dir.path().join("b.obj");
        std::fs::write(&obj, "v 1 2 3\nv -1 0 nan\n").unwrap();
        let e = mesh_bounds(&obj).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }
}
