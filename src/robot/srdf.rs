//! The SRDF's `<disable_collisions link1 link2 reason/>`: link pairs whose self-collision is
//! not checked (MoveIt Setup Assistant writes them). Other SRDF elements are ignored.

use crate::{Error, Result};

/// A disabled pair as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisabledPair {
    /// `link1`.
    pub link1: String,
    /// `link2`.
    pub link2: String,
    /// `reason` (Adjacent, Never, Default, ...), informative.
    pub reason: String,
    /// Line in the file.
    pub line: u32,
}

/// Parses SRDF XML; `source` names it in errors.
pub fn parse_srdf(xml: &str, source: &str) -> Result<Vec<DisabledPair>> {
    let doc = roxmltree::Document::parse(xml)
        .map_err(|e| Error::robot_file(source, "XML", format!("not well-formed XML: {e}")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "robot" {
        return Err(Error::robot_file(
            source,
            format!("<{}>", root.tag_name().name()),
            "expected the root element <robot>",
        ));
    }
    let mut pairs = Vec::new();
    for node in root
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == "disable_collisions")
    {
        let line = doc.text_pos_at(node.range().start).row;
        let attr = |name: &str| -> Result<String> {
            node.attribute(name).map(str::to_string).ok_or_else(|| {
                Error::robot_file(
                    source,
                    format!("<disable_collisions> (line {line})"),
                    format!("attribute `{name}` is missing"),
                )
            })
        };
        pairs.push(DisabledPair {
            link1: attr("link1")?,
            link2: attr("link2")?,
            reason: node.attribute("reason").unwrap_or("").to_string(),
            line,
        });
    }
    Ok(pairs)
}

/// Reads an SRDF file.
pub fn load_srdf(path: &std::path::Path) -> Result<Vec<DisabledPair>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_srdf(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pairs_and_names_missing_attributes() {
        let xml = r#"<robot name="r"><group name="arm"/>
            <disable_collisions link1="a" link2="b" reason="Never"/></robot>"#;
        let pairs = parse_srdf(xml, "r.srdf").unwrap();
        assert_eq!(pairs.len(), 1);
        assert_eq!(
            (pairs[0].link1.as_str(), pairs[0].link2.as_str()),
            ("a", "b")
        );
        let e = parse_srdf(
            r#"<robot><disable_collisions link1="a"/></robot>"#,
            "r.srdf",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("r.srdf") && e.contains("link2"), "{e}");
    }
}
