//! Universal Binary JSON (UBJSON, Draft 12), the format XGBoost saves models in
//! (`Booster.save_model("*.ubj")`, and the raw bytes inside a pickled XGBoost model).
//!
//! Parsed into a [`serde_json::Value`], so a model document reads the same whether it came
//! as JSON text or UBJSON. Big-endian numbers; optimised containers (`$` type, `#` count)
//! are supported, as XGBoost writes its arrays that way.

use serde_json::{Map, Number, Value};

/// Why a UBJSON document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UbjsonError {
    /// The data ended inside a value.
    #[error("UBJSON data ends early (at byte {offset})")]
    Truncated {
        /// Where more data was needed.
        offset: usize,
    },
    /// A byte that is not a UBJSON type marker where a value should start.
    #[error("unknown UBJSON type marker 0x{marker:02x} at byte {offset}")]
    UnknownMarker {
        /// The byte.
        marker: u8,
        /// Its position.
        offset: usize,
    },
    /// Something else that breaks the format (negative length, bad UTF-8, ...).
    #[error("malformed UBJSON at byte {offset}: {what}")]
    Malformed {
        /// Where.
        offset: usize,
        /// What is wrong.
        what: String,
    },
    /// Bytes left over after the document.
    #[error("{extra} bytes after the end of the UBJSON document")]
    TrailingData {
        /// How many.
        extra: usize,
    },
}

/// Containers nested deeper than this are refused (no stack overflow on hostile input).
const MAX_DEPTH: usize = 256;

/// Parses one UBJSON document that fills `bytes`.
///
/// ```
/// use totalseg_io::ubjson::parse_ubjson;
/// // {"a": [1.5f32, 2.0f32]} with an optimised (typed, counted) array
/// let bytes = [
///     b'{', b'i', 1, b'a', b'[', b'$', b'd', b'#', b'i', 2,
///     0x3f, 0xc0, 0, 0, 0x40, 0, 0, 0, b'}',
/// ];
/// let value = parse_ubjson(&bytes)?;
/// assert_eq!(value["a"][0].as_f64(), Some(1.5));
/// assert_eq!(value["a"][1].as_f64(), Some(2.0));
/// # Ok::<(), totalseg_io::ubjson::UbjsonError>(())
/// ```
pub fn parse_ubjson(bytes: &[u8]) -> Result<Value, UbjsonError> {
    let mut reader = Reader { bytes, pos: 0 };
    let value = reader.value(0)?;
    if reader.pos != bytes.len() {
        return Err(UbjsonError::TrailingData {
            extra: bytes.len() - reader.pos,
        });
    }
    Ok(value)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], UbjsonError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(UbjsonError::Truncated { offset: self.pos })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, UbjsonError> {
        Ok(self.take(1)?[0])
    }

    fn peek(&self) -> Result<u8, UbjsonError> {
        self.bytes
            .get(self.pos)
            .copied()
            .ok_or(UbjsonError::Truncated { offset: self.pos })
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], UbjsonError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn malformed(&self, what: impl Into<String>) -> UbjsonError {
        UbjsonError::Malformed {
            offset: self.pos,
            what: what.into(),
        }
    }

    /// An integer of the type `marker` (lengths and counts).
    fn integer(&mut self, marker: u8) -> Result<i64, UbjsonError> {
        Ok(match marker {
            b'i' => i64::from(i8::from_be_bytes(self.array()?)),
            b'U' => i64::from(self.byte()?),
            b'I' => i64::from(i16::from_be_bytes(self.array()?)),
            b'l' => i64::from(i32::from_be_bytes(self.array()?)),
            b'L' => i64::from_be_bytes(self.array()?),
            other => {
                return Err(UbjsonError::UnknownMarker {
                    marker: other,
                    offset: self.pos - 1,
                })
            }
        })
    }

    /// A length or count: an integer with its own marker, not negative.
    fn length(&mut self) -> Result<usize, UbjsonError> {
        let marker = self.byte()?;
        let n = self.integer(marker)?;
        usize::try_from(n).map_err(|_| self.malformed(format!("negative length {n}")))
    }

    fn string_body(&mut self) -> Result<String, UbjsonError> {
        let n = self.length()?;
        let start = self.pos;
        let raw = self.take(n)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| UbjsonError::Malformed {
                offset: start,
                what: "string is not UTF-8".into(),
            })
    }

    fn value(&mut self, depth: usize) -> Result<Value, UbjsonError> {
        let marker = self.byte()?;
        self.value_of(marker, depth)
    }

    fn value_of(&mut self, marker: u8, depth: usize) -> Result<Value, UbjsonError> {
        Ok(match marker {
            b'Z' => Value::Null,
            b'T' => Value::Bool(true),
            b'F' => Value::Bool(false),
            b'i' | b'U' | b'I' | b'l' | b'L' => Value::Number(self.integer(marker)?.into()),
            b'd' => float(f64::from(f32::from_be_bytes(self.array()?))),
            b'D' => float(f64::from_be_bytes(self.array()?)),
            b'C' => Value::String(char::from(self.byte()?).to_string()),
            // High-precision numbers are decimal strings; keep the text.
            b'S' | b'H' => Value::String(self.string_body()?),
            b'[' => self.container(depth, false)?,
            b'{' => self.container(depth, true)?,
            b'N' => return self.value(depth),
            other => {
                return Err(UbjsonError::UnknownMarker {
                    marker: other,
                    offset: self.pos - 1,
                })
            }
        })
    }

    /// An array (`object == false`) or object after its opening bracket.
    fn container(&mut self, depth: usize, object: bool) -> Result<Value, UbjsonError> {
        if depth >= MAX_DEPTH {
            return Err(self.malformed("containers nested too deeply"));
        }
        let mut element_type = None;
        if self.peek()? == b'$' {
            self.pos += 1;
            element_type = Some(self.byte()?);
            if self.peek()? != b'#' {
                return Err(self.malformed("typed container without a count"));
            }
        }
        let mut count = None;
        if self.peek()? == b'#' {
            self.pos += 1;
            let n = self.length()?;
            // Every element takes at least one byte, except typed null/bool/no-op ones.
            let min_size = match element_type {
                Some(b'Z' | b'T' | b'F' | b'N') => 0,
                _ => 1,
            };
            if n.saturating_mul(min_size) > self.bytes.len() - self.pos {
                return Err(UbjsonError::Truncated { offset: self.pos });
            }
            count = Some(n);
        }
        let element = |reader: &mut Self| match element_type {
            Some(t) => reader.value_of(t, depth + 1),
            None => reader.value(depth + 1),
        };
        if object {
            let mut map = Map::new();
            let mut index = 0usize;
            loop {
                match count {
                    Some(n) if index == n => break,
                    None if self.peek()? == b'}' => {
                        self.pos += 1;
                        break;
                    }
                    _ => {}
                }
                let key = self.string_body()?;
                let value = element(self)?;
                map.insert(key, value);
                index += 1;
            }
            Ok(Value::Object(map))
        } else {
            let mut items = Vec::with_capacity(count.unwrap_or(0).min(1 << 20));
            loop {
                match count {
                    Some(n) if items.len() == n => break,
                    None if self.peek()? == b']' => {
                        self.pos += 1;
                        break;
                    }
                    _ => {}
                }
                items.push(element(self)?);
            }
            Ok(Value::Array(items))
        }
    }
}

/// JSON has no NaN or infinity; such floats become `null` (XGBoost does not write them
/// in model values it reads back).
fn float(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Vec<u8> {
        let mut out = vec![b'i', k.len() as u8];
        out.extend_from_slice(k.as_bytes());
        out
    }

    #[test]
    fn reads_every_scalar_type() {
        let mut doc = vec![b'{'];
        for (k, bytes) in [
            ("z", vec![b'Z']),
            ("t", vec![b'T']),
            ("f", vec![b'F']),
            ("i8", vec![b'i', 0xff]),
            ("u8", vec![b'U', 0xff]),
            ("i16", vec![b'I', 0x80, 0x00]),
            ("i32", vec![b'l', 0x00, 0x01, 0x00, 0x00]),
            ("i64", vec![b'L', 0, 0, 0, 1, 0, 0, 0, 0]),
            ("f32", vec![b'd', 0xbf, 0x80, 0, 0]),
            (
                "f64",
                vec![b'D', 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18],
            ),
            ("c", vec![b'C', b'x']),
            ("s", vec![b'S', b'i', 2, b'h', b'i']),
            ("h", vec![b'H', b'i', 3, b'1', b'.', b'5']),
        ] {
            doc.extend(key(k));
            doc.extend(bytes);
        }
        doc.push(b'}');
        let v = parse_ubjson(&doc).unwrap();
        assert!(v["z"].is_null());
        assert_eq!(v["t"], Value::Bool(true));
        assert_eq!(v["f"], Value::Bool(false));
        assert_eq!(v["i8"], -1);
        assert_eq!(v["u8"], 255);
        assert_eq!(v["i16"], -32768);
        assert_eq!(v["i32"], 65536);
        assert_eq!(v["i64"], 1i64 << 32);
        assert_eq!(v["f32"], -1.0);
        assert_eq!(v["f64"], std::f64::consts::PI);
        assert_eq!(v["c"], "x");
        assert_eq!(v["s"], "hi");
        assert_eq!(v["h"], "1.5");
    }

    #[test]
    fn reads_counted_and_open_containers() {
        // [#i2 l..l..]  and  [ i1 i2 ]  and  {$i#i1 i1 "a" 7}
        let counted = [b'[', b'#', b'i', 2, b'l', 0, 0, 0, 5, b'U', 6];
        assert_eq!(parse_ubjson(&counted).unwrap(), serde_json::json!([5, 6]));
        let open = [b'[', b'i', 1, b'N', b'i', 2, b']'];
        assert_eq!(parse_ubjson(&open).unwrap(), serde_json::json!([1, 2]));
        let typed_object = [b'{', b'$', b'i', b'#', b'i', 1, b'i', 1, b'a', 7];
        assert_eq!(
            parse_ubjson(&typed_object).unwrap(),
            serde_json::json!({"a": 7})
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let truncated = [b'[', b'$', b'd', b'#', b'i', 2, 0x3f, 0x80];
        assert!(matches!(
            parse_ubjson(&truncated),
            Err(UbjsonError::Truncated { .. })
        ));
        // A count far larger than the data must not allocate it.
        let huge = [
            b'[', b'#', b'L', 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        assert!(parse_ubjson(&huge).is_err());
        let negative = [b'S', b'i', 0xff];
        assert!(matches!(
            parse_ubjson(&negative),
            Err(UbjsonError::Malformed { .. })
        ));
        assert!(matches!(
            parse_ubjson(b"?"),
            Err(UbjsonError::UnknownMarker { marker: b'?', .. })
        ));
        assert!(matches!(
            parse_ubjson(b"TT"),
            Err(UbjsonError::TrailingData { extra: 1 })
        ));
        assert!(parse_ubjson(&[b'{', b'i', 1, b'a']).is_err());
        let deep = vec![b'['; 10_000];
        assert!(parse_ubjson(&deep).is_err());
        let bad_utf8 = [b'S', b'i', 1, 0xff];
        assert!(parse_ubjson(&bad_utf8).is_err());
    }
}
