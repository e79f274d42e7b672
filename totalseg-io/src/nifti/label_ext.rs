//! TotalSegmentator's label-map extension: a NIfTI extension (code 0) holding
//! Caret-style XML with each label's key, colour and name, as written by
//! `totalsegmentator/nifti_ext_header.py::add_label_map_to_nifti`.

use std::collections::BTreeMap;

use super::error::NiftiErrorKind;
use super::header::NiftiExtension;

/// Label id -> class name (e.g. `5 -> "liver"`), in ascending id order (the order
/// TotalSegmentator's class maps use, so the XML comes out in the same order).
pub type LabelNames = BTreeMap<u8, String>;

/// The extension code TotalSegmentator uses for the label XML.
pub const LABEL_EXTENSION_CODE: i32 = 0;

/// TotalSegmentator's colour table; label `id` gets `COLOURS[id % 12]` (each channel / 255).
const COLOURS: [[u8; 3]; 12] = [
    [255, 0, 0],
    [0, 255, 0],
    [0, 0, 255],
    [255, 255, 0],
    [255, 0, 255],
    [0, 255, 255],
    [255, 128, 0],
    [255, 0, 128],
    [128, 255, 128],
    [0, 128, 255],
    [128, 128, 128],
    [185, 170, 155],
];

const XML_PRE: &str = r#"<?xml version="1.0" encoding="UTF-8"?> <CaretExtension>  <Date><![CDATA[2013-07-14T05:45:09]]></Date>   <VolumeInformation Index="0">   <LabelTable>"#;
const XML_POST: &str = "  </LabelTable>  <StudyMetaDataLinkSet>  </StudyMetaDataLinkSet>  <VolumeType><![CDATA[Label]]></VolumeType>   </VolumeInformation></CaretExtension>";
/// What TotalSegmentator appends after `XML_POST`.
const XML_TAIL: &str = "\n              ";

/// The label XML exactly as TotalSegmentator writes it for `names` (byte-identical:
/// same header text, colours formatted like Python's `repr(float)`, same line breaks).
///
/// ```
/// use totalseg_io::nifti::{label_names_to_caret_xml, parse_caret_label_xml, LabelNames};
/// let names = LabelNames::from([(5, "liver".to_string()), (90, "brain".to_string())]);
/// let xml = label_names_to_caret_xml(&names);
/// assert!(xml.contains(r#"<Label Key="5" Red="0.0" Green="1.0" Blue="1.0" Alpha="1"><![CDATA[liver]]></Label>"#));
/// assert_eq!(parse_caret_label_xml(&xml).unwrap(), names);
/// ```
pub fn label_names_to_caret_xml(names: &LabelNames) -> String {
    let mut body = String::new();
    for (&id, name) in names {
        let [r, g, b] = COLOURS[id as usize % COLOURS.len()];
        body.push_str(&format!(
            "<Label Key=\"{id}\" Red=\"{}\" Green=\"{}\" Blue=\"{}\" Alpha=\"1\"><![CDATA[{}]]></Label>\n",
            python_float_repr(r as f64 / 255.0),
            python_float_repr(g as f64 / 255.0),
            python_float_repr(b as f64 / 255.0),
            // "]]>" would end the CDATA section early; split it across two sections.
            name.replace("]]>", "]]]]><![CDATA[>"),
        ));
    }
    format!("{XML_PRE}\n{body}\n{XML_POST}{XML_TAIL}")
}

/// The extension TotalSegmentator appends for `names`.
pub fn label_extension(names: &LabelNames) -> NiftiExtension {
    NiftiExtension {
        code: LABEL_EXTENSION_CODE,
        content: label_names_to_caret_xml(names).into_bytes(),
    }
}

/// Label names from the first extension holding Caret label XML, `None` if there is none.
pub fn label_names_from_extensions(
    extensions: &[NiftiExtension],
) -> Result<Option<LabelNames>, NiftiErrorKind> {
    for ext in extensions {
        if ext.code != LABEL_EXTENSION_CODE {
            continue;
        }
        let Ok(text) = std::str::from_utf8(&ext.content) else {
            continue;
        };
        if text.contains("<CaretExtension") {
            return parse_caret_label_xml(text).map(Some);
        }
    }
    Ok(None)
}

/// Parses the `<Label Key="..">name</Label>` entries of Caret label XML. Names may be in
/// CDATA sections or plain text with XML entities; surrounding whitespace is trimmed (as
/// xmltodict, which TotalSegmentator reads them with, does).
pub fn parse_caret_label_xml(xml: &str) -> Result<LabelNames, NiftiErrorKind> {
    let bad = |msg: String| NiftiErrorKind::BadLabelExtension(msg);
    let mut names = LabelNames::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<Label") {
        let after = &rest[start + "<Label".len()..];
        // Skip <LabelTable> and other tags that merely start with "Label".
        match after.chars().next() {
            Some(c) if c.is_whitespace() || c == '>' || c == '/' => {}
            _ => {
                rest = after;
                continue;
            }
        }
        let tag_end = find_tag_end(after).ok_or_else(|| bad("unterminated <Label> tag".into()))?;
        let attributes = &after[..tag_end];
        let key = attribute(attributes, "Key")
            .ok_or_else(|| bad(format!("<Label{attributes}> has no Key attribute")))?;
        let id: u8 = key
            .trim()
            .parse()
            .map_err(|_| bad(format!("label key {key:?} is not an integer in 0..=255")))?;
        let self_closing = attributes.trim_end().ends_with('/');
        let body_start = &after[tag_end + 1..];
        let (name, next) = if self_closing {
            (String::new(), body_start)
        } else {
            let close = body_start
                .find("</Label>")
                .ok_or_else(|| bad(format!("label {id} has no </Label>")))?;
            (
                element_text(&body_start[..close]).map_err(bad)?,
                &body_start[close + "</Label>".len()..],
            )
        };
        names.insert(id, name.trim().to_string());
        rest = next;
    }
    Ok(names)
}

/// Python's `repr(float)` for the values in [0, 1] the colour table produces: Rust's
/// `Debug` prints the same shortest round-trip digits, and "1.0"/"0.0" for integers.
fn python_float_repr(v: f64) -> String {
    format!("{v:?}")
}

/// Index of the `>` closing a start tag, skipping `>` inside quoted attribute values.
fn find_tag_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"') | (None, '\'') => quote = Some(c),
            (None, '>') => return Some(i),
            _ => {}
        }
    }
    None
}

/// The unescaped value of attribute `name` in a start tag's attribute text.
fn attribute(attrs: &str, name: &str) -> Option<String> {
    let mut rest = attrs;
    loop {
        let eq = rest.find('=')?;
        let attr_name = rest[..eq].trim();
        let value_part = rest[eq + 1..].trim_start();
        let quote = value_part.chars().next()?;
        if quote != '"' && quote != '\'' {
            return None;
        }
        let value_end = value_part[1..].find(quote)? + 1;
        let value = &value_part[1..value_end];
        if attr_name == name {
            return unescape(value).ok();
        }
        rest = &value_part[value_end + 1..];
    }
}

/// Text content of an element: CDATA sections verbatim, other text unescaped.
fn element_text(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("<![CDATA[") {
        out.push_str(&unescape(&rest[..start])?);
        let inner = &rest[start + "<![CDATA[".len()..];
        let end = inner
            .find("]]>")
            .ok_or_else(|| "unterminated CDATA section".to_string())?;
        out.push_str(&inner[..end]);
        rest = &inner[end + "]]>".len()..];
    }
    out.push_str(&unescape(rest)?);
    Ok(out)
}

/// Replaces the five XML entities and numeric character references.
fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after
            .find(';')
            .ok_or_else(|| format!("unterminated entity in {s:?}"))?;
        let entity = &after[..semi];
        let c = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("unknown entity &{entity}; in {s:?}"))?
            }
        };
        out.push(c);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_format_like_python() {
        assert_eq!(python_float_repr(1.0), "1.0");
        assert_eq!(python_float_repr(0.0), "0.0");
        assert_eq!(python_float_repr(128.0 / 255.0), "0.5019607843137255");
        assert_eq!(python_float_repr(185.0 / 255.0), "0.7254901960784313");
        assert_eq!(python_float_repr(170.0 / 255.0), "0.6666666666666666");
        assert_eq!(python_float_repr(155.0 / 255.0), "0.6078431372549019");
    }

    #[test]
    fn xml_matches_totalsegmentator_layout() {
        let names = LabelNames::from([(5, "liver".to_string()), (90, "brain".to_string())]);
        // Verbatim from TotalSegmentator's `--ml -rs liver brain` output (example_seg_roi_subset).
        let expected = "<?xml version=\"1.0\" encoding=\"UTF-8\"?> <CaretExtension>  <Date><![CDATA[2013-07-14T05:45:09]]></Date>   <VolumeInformation Index=\"0\">   <LabelTable>\n<Label Key=\"5\" Red=\"0.0\" Green=\"1.0\" Blue=\"1.0\" Alpha=\"1\"><![CDATA[liver]]></Label>\n<Label Key=\"90\" Red=\"1.0\" Green=\"0.5019607843137255\" Blue=\"0.0\" Alpha=\"1\"><![CDATA[brain]]></Label>\n\n  </LabelTable>  <StudyMetaDataLinkSet>  </StudyMetaDataLinkSet>  <VolumeType><![CDATA[Label]]></VolumeType>   </VolumeInformation></CaretExtension>\n              ";
        assert_eq!(label_names_to_caret_xml(&names), expected);
    }

    #[test]
    fn parses_plain_text_entities_and_odd_names() {
        let xml = "<CaretExtension><LabelTable><Label Key='3' Red=\"1\">  a &amp; b </Label>\
                   <Label Key=\"4\"/><Label Key=\"7\"><![CDATA[x]]]]><![CDATA[>y]]></Label></LabelTable></CaretExtension>";
        let names = parse_caret_label_xml(xml).expect("valid");
        assert_eq!(names[&3], "a & b");
        assert_eq!(names[&4], "");
        assert_eq!(names[&7], "x]]>y");
        let odd = LabelNames::from([(1, "we]]>ird <&>".to_string())]);
        assert_eq!(
            parse_caret_label_xml(&label_names_to_caret_xml(&odd)).expect("valid"),
            odd
        );
    }

    #[test]
    fn malformed_xml_is_an_error_not_a_panic() {
        for xml in [
            "<Label Key=\"300\">x</Label>",
            "<Label Key=\"1\">x",
            "<Label Key=\"1\"",
            "<Label Red=\"1\">x</Label>",
            "<Label Key=\"1\"><![CDATA[x</Label>",
            "<Label Key=\"1\">&bogus;</Label>",
            "<Label Key=\"1\">&#xZZ;</Label>",
        ] {
            assert!(parse_caret_label_xml(xml).is_err(), "{xml}");
        }
    }
}
