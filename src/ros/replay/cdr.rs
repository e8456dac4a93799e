//! Canonical CDR bytes of a message, walked along its `ros2msg` definition.
//!
//! r2r's `to_serialized_bytes` calls `rmw_serialize`, which with Fast DDS
//! (rmw_fastrtps_shared_cpp `rmw_serialize.cpp`) sets the buffer length to the type support's
//! *estimated* size, not the bytes written, and reuses a per-thread buffer whose alignment
//! padding keeps what earlier messages left there. DDS payloads and rosbag2's recordings have
//! the exact length, and readers such as `rosbags` reject a message with more than 3 bytes left
//! over ("CDR message size mismatch"). [`Layouts::canonicalize`] trims each message to its exact
//! length and zeroes its padding, so the same message always gives the same bytes.
//!
//! Encoding: plain CDR (XCDR1), little or big endian per the 4-byte encapsulation header; each
//! primitive aligned to its size (8 for 64-bit types) from the end of that header; strings and
//! sequences are a `u32` count then the elements (strings with a terminating NUL).

use std::collections::BTreeMap;

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
enum Base {
    /// Size (= alignment) in bytes.
    Primitive(usize),
    String,
    /// `pkg/msg/Type`.
    Message(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Count {
    One,
    Fixed(usize),
    /// Unbounded or bounded sequence: a `u32` count first.
    Sequence,
}

#[derive(Debug, Clone, PartialEq)]
struct Field {
    base: Base,
    count: Count,
}

/// Message layouts from `ros2msg` definitions.
#[derive(Debug, Clone, Default)]
pub struct Layouts {
    types: BTreeMap<String, Vec<Field>>,
}

fn primitive_size(name: &str) -> Option<usize> {
    Some(match name {
        "bool" | "byte" | "char" | "int8" | "uint8" => 1,
        "int16" | "uint16" => 2,
        "int32" | "uint32" | "float32" => 4,
        "int64" | "uint64" | "float64" => 8,
        _ => return None,
    })
}

fn full_name(name: &str, package: &str) -> String {
    match name.split('/').collect::<Vec<_>>().as_slice() {
        [pkg, ty] => format!("{pkg}/msg/{ty}"),
        ["Header"] => "std_msgs/msg/Header".into(),
        [ty] => format!("{package}/msg/{ty}"),
        _ => name.to_string(),
    }
}

fn parse_fields(text: &str, package: &str) -> Result<Vec<Field>> {
    let mut fields = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut tokens = line.split_whitespace();
        let (Some(field_type), Some(name)) = (tokens.next(), tokens.next()) else {
            continue;
        };
        if name.contains('=') || tokens.next().is_some_and(|t| t.starts_with('=')) {
            continue; // a constant
        }
        let (base_name, count) = match field_type.split_once('[') {
            None => (field_type, Count::One),
            Some((base, rest)) => {
                let inside = rest.trim_end_matches(']');
                if inside.is_empty() || inside.starts_with("<=") {
                    (base, Count::Sequence)
                } else {
                    let n = inside.parse().map_err(|_| {
                        Error::Invalid(format!("message definition: bad array `{field_type}`"))
                    })?;
                    (base, Count::Fixed(n))
                }
            }
        };
        let base_name = base_name.split("<=").next().unwrap_or(base_name);
        let base = match base_name {
            "string" => Base::String,
            "wstring" => {
                return Err(Error::Invalid(format!(
                    "message definition: `{field_type} {name}`: wstring is not supported"
                )))
            }
            other => match primitive_size(other) {
                Some(size) => Base::Primitive(size),
                None => Base::Message(full_name(other, package)),
            },
        };
        fields.push(Field { base, count });
    }
    Ok(fields)
}

impl Layouts {
    /// Adds every type of a `ros2msg` schema (the root `type_name` and the `MSG:` sections).
    pub fn add_schema(&mut self, type_name: &str, text: &str) -> Result<()> {
        let mut name = full_name(type_name, "");
        let mut body = String::new();
        let bar = "=".repeat(80);
        for line in text.lines() {
            if line.trim() == bar {
                self.add_type(&name, &body)?;
                body.clear();
                name.clear();
            } else if let Some(rest) = line.strip_prefix("MSG: ").filter(|_| name.is_empty()) {
                name = full_name(rest.trim().replace("/msg/", "/").as_str(), "");
            } else {
                body.push_str(line);
                body.push('\n');
            }
        }
        self.add_type(&name, &body)
    }

    fn add_type(&mut self, name: &str, body: &str) -> Result<()> {
        let package = name.split('/').next().unwrap_or("");
        let fields = parse_fields(body, package)?;
        self.types.entry(name.to_string()).or_insert(fields);
        Ok(())
    }

    /// Trims the CDR message `data` (a `type_name`, with its encapsulation header) to its exact
    /// length and zeroes its alignment padding.
    pub fn canonicalize(&self, type_name: &str, data: &mut Vec<u8>) -> Result<()> {
        let (len, padding) = self.walk(type_name, data)?;
        data.truncate(len);
        for (start, end) in padding {
            if let Some(bytes) = data.get_mut(4 + start..4 + end) {
                bytes.fill(0);
            }
        }
        Ok(())
    }

    /// Bytes of the CDR message `data` (with its encapsulation header) that belong to a
    /// `type_name` message.
    pub fn serialized_len(&self, type_name: &str, data: &[u8]) -> Result<usize> {
        Ok(self.walk(type_name, data)?.0)
    }

    /// The length and the padding ranges (body offsets) of a message.
    fn walk(&self, type_name: &str, data: &[u8]) -> Result<(usize, Vec<(usize, usize)>)> {
        let little = match data.get(..2) {
            Some([0, 1]) => true,
            Some([0, 0]) => false,
            _ => {
                return Err(Error::Invalid(format!(
                    "{type_name}: not a CDR message (encapsulation {:?})",
                    data.get(..4)
                )))
            }
        };
        let mut walker = Walker {
            layouts: self,
            body: data.get(4..).unwrap_or(&[]),
            pos: 0,
            little,
            padding: Vec::new(),
        };
        walker.message(&full_name(type_name, ""), 0)?;
        Ok((4 + walker.pos, walker.padding))
    }
}

struct Walker<'a> {
    layouts: &'a Layouts,
    body: &'a [u8],
    pos: usize,
    little: bool,
    padding: Vec<(usize, usize)>,
}

impl Walker<'_> {
    fn short(&self, what: &str) -> Error {
        Error::Invalid(format!(
            "CDR message ends at byte {} inside {what}",
            self.body.len() + 4
        ))
    }

    fn skip(&mut self, align: usize, bytes: usize, what: &str) -> Result<()> {
        let aligned = self.pos.div_ceil(align) * align;
        if aligned > self.pos {
            self.padding.push((self.pos, aligned));
        }
        self.pos = aligned + bytes;
        if self.pos > self.body.len() {
            return Err(self.short(what));
        }
        Ok(())
    }

    fn u32(&mut self, what: &str) -> Result<usize> {
        self.skip(4, 4, what)?;
        let bytes: [u8; 4] = self.body[self.pos - 4..self.pos]
            .try_into()
            .map_err(|_| self.short(what))?;
        Ok(if self.little {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        } as usize)
    }

    fn message(&mut self, name: &str, depth: usize) -> Result<()> {
        if depth > 32 {
            return Err(Error::Invalid(format!("{name}: types nested too deeply")));
        }
        let fields = self
            .layouts
            .types
            .get(name)
            .ok_or_else(|| Error::Invalid(format!("no definition of `{name}`")))?;
        for field in fields {
            let n = match field.count {
                Count::One => 1,
                Count::Fixed(n) => n,
                Count::Sequence => self.u32(name)?,
            };
            match &field.base {
                Base::Primitive(size) => {
                    if n > 0 {
                        self.skip(*size, size * n, name)?;
                    }
                }
                Base::String => {
                    for _ in 0..n {
                        let len = self.u32(name)?;
                        self.skip(1, len, name)?;
                    }
                }
                Base::Message(inner) => {
                    for _ in 0..n {
                        self.message(inner, depth + 1)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layouts() -> Layouts {
        let bar = "=".repeat(80);
        let schema = format!(
            "# a comment\nint32 KIND=3\nstd_msgs/Header header\nstring[] names\nPoint[] points\n\
             float32[2] pair\nuint8 flag\n{bar}\nMSG: std_msgs/msg/Header\n\
             builtin_interfaces/Time stamp\nstring frame_id\n{bar}\nMSG: builtin_interfaces/Time\n\
             int32 sec\nuint32 nanosec\n{bar}\nMSG: pkg/Point\nfloat64 x\nfloat64 y\n"
        );
        let mut l = Layouts::default();
        l.add_schema("pkg/msg/Top", &schema).unwrap();
        l
    }

    /// Little-endian CDR of a `pkg/msg/Top` as rosbags writes it, plus `extra` padding bytes.
    fn top(extra: usize) -> Vec<u8> {
        let mut b = vec![0, 1, 0, 0];
        b.extend(7i32.to_le_bytes());
        b.extend(9u32.to_le_bytes());
        b.extend(5u32.to_le_bytes());
        b.extend(b"abcd\0");
        b.extend([0, 0, 0]); // align the names count to 4
        b.extend(1u32.to_le_bytes());
        b.extend(2u32.to_le_bytes());
        b.extend(b"x\0");
        b.extend([0, 0]);
        b.extend(1u32.to_le_bytes()); // one point
        b.extend([0, 0, 0, 0]); // align the f64s to 8 (from the body start)
        b.extend(1.5f64.to_le_bytes());
        b.extend(2.5f64.to_le_bytes());
        b.extend(1.0f32.to_le_bytes());
        b.extend(2.0f32.to_le_bytes());
        b.push(1);
        b.extend(std::iter::repeat_n(0, extra));
        b
    }

    #[test]
    fn finds_the_exact_length_with_alignment_and_ignores_padding() {
        let l = layouts();
        let exact = top(0).len();
        assert_eq!(l.serialized_len("pkg/msg/Top", &top(0)).unwrap(), exact);
        assert_eq!(l.serialized_len("pkg/Top", &top(8)).unwrap(), exact);
        let err = l
            .serialized_len("pkg/msg/Top", &top(0)[..exact - 2])
            .unwrap_err()
            .to_string();
        assert!(err.contains("ends at byte"), "{err}");
        assert!(l.serialized_len("pkg/msg/Other", &top(0)).is_err());
        let mut dirty = top(8);
        dirty[4 + 17] = 0xaa; // padding after the frame id
        dirty[4 + 36] = 0xbb; // padding before the point's f64s
        l.canonicalize("pkg/msg/Top", &mut dirty).unwrap();
        assert_eq!(dirty, top(0));
        assert!(l.serialized_len("pkg/msg/Top", &[1, 2]).is_err());
    }
}
