//! Just enough of ONNX to read a model's weights: the graph's initializers.
//!
//! An `.onnx` file is a protobuf `ModelProto`. Its weights are `TensorProto`s listed as
//! initializers of the graph (`ModelProto.graph` = field 7, `GraphProto.initializer` =
//! field 5). Of a tensor we read `dims` (1), `data_type` (2), `name` (8), `raw_data` (9)
//! and `float_data` (4); everything else in the file is skipped by its wire type. A
//! tensor whose data lives in an external file is refused: Silero's ONNX files keep
//! their data inline.

use super::ConvertError;

/// ONNX `TensorProto.DataType.FLOAT`.
const FLOAT: i32 = 1;

/// A float tensor stored in the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Initializer {
    /// Its name in the graph.
    pub name: String,
    /// Dimensions, outermost first (as ONNX and PyTorch list them).
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<f32>,
}

fn malformed(reason: impl Into<String>) -> ConvertError {
    ConvertError::Format {
        what: "ONNX file".into(),
        reason: reason.into(),
    }
}

/// A protobuf field as it sits in the buffer.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Reads protobuf fields one after another; every read is bounds-checked.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Fields { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, ConvertError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| malformed("truncated varint"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], ConvertError> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| {
                malformed(format!(
                    "a field of {n} bytes at byte {} runs past the end ({} bytes)",
                    self.pos,
                    self.buf.len()
                ))
            })?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// The next field: its number and value, or `None` at the end.
    fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, ConvertError> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let len = self.varint()?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            other => return Err(malformed(format!("unsupported wire type {other}"))),
        };
        Ok(Some((key >> 3, value)))
    }
}

/// The float initializers of the ONNX model in `bytes`, in file order.
pub fn initializers(bytes: &[u8]) -> Result<Vec<Initializer>, ConvertError> {
    let mut graph = None;
    let mut fields = Fields::new(bytes);
    while let Some((number, value)) = fields.next_field()? {
        if let (7, Value::Bytes(body)) = (number, value) {
            graph = Some(body);
        }
    }
    let graph = graph.ok_or_else(|| malformed("no graph (is this an ONNX model?)"))?;
    let mut tensors = Vec::new();
    let mut fields = Fields::new(graph);
    while let Some((number, value)) = fields.next_field()? {
        if let (5, Value::Bytes(body)) = (number, value) {
            if let Some(tensor) = parse_tensor(body)? {
                tensors.push(tensor);
            }
        }
    }
    Ok(tensors)
}

/// Parses a `TensorProto`; `None` for tensors that are not float (Silero's graph has
/// a few integer constants among its initializers).
fn parse_tensor(body: &[u8]) -> Result<Option<Initializer>, ConvertError> {
    let mut dims = Vec::new();
    let mut data_type = 0i32;
    let mut name = String::new();
    let mut raw: Option<&[u8]> = None;
    let mut floats: Vec<f32> = Vec::new();
    let mut external = false;
    let mut fields = Fields::new(body);
    while let Some((number, value)) = fields.next_field()? {
        match (number, value) {
            (1, Value::Varint(d)) => dims.push(d),
            (1, Value::Bytes(packed)) => {
                let mut inner = Fields::new(packed);
                while inner.pos < packed.len() {
                    dims.push(inner.varint()?);
                }
            }
            (2, Value::Varint(t)) => data_type = t as i32,
            (8, Value::Bytes(text)) => {
                name = String::from_utf8(text.to_vec())
                    .map_err(|_| malformed("a tensor name is not UTF-8"))?;
            }
            (9, Value::Bytes(bytes)) => raw = Some(bytes),
            (4, Value::Bytes(packed)) => {
                if packed.len() % 4 != 0 {
                    return Err(malformed("packed float_data is not a multiple of 4 bytes"));
                }
                floats.extend(
                    packed
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
            }
            (13, _) => external = true,                // external_data
            (14, Value::Varint(1)) => external = true, // data_location = EXTERNAL
            _ => {}
        }
    }
    if data_type != FLOAT {
        return Ok(None);
    }
    if external {
        return Err(malformed(format!(
            "tensor {name:?} keeps its data in an external file; only inline data is supported"
        )));
    }
    let dims: Vec<usize> = dims
        .into_iter()
        .map(|d| usize::try_from(d).map_err(|_| malformed(format!("tensor {name:?}: huge dim"))))
        .collect::<Result<_, _>>()?;
    let count = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| malformed(format!("tensor {name:?}: shape {dims:?} overflows")))?;
    let data = match raw {
        Some(bytes) => {
            if count.checked_mul(4) != Some(bytes.len()) {
                return Err(malformed(format!(
                    "tensor {name:?} has shape {dims:?} ({count} floats) but {} bytes of data",
                    bytes.len()
                )));
            }
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        }
        None if floats.len() == count => floats,
        None => {
            return Err(malformed(format!(
                "tensor {name:?} has shape {dims:?} but {} values",
                floats.len()
            )))
        }
    };
    Ok(Some(Initializer { name, dims, data }))
}

/// Protobuf encoding helpers, for building test files.
#[cfg(test)]
pub(crate) mod encode {
    pub fn varint(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    pub fn bytes_field(out: &mut Vec<u8>, number: u64, body: &[u8]) {
        varint(out, number << 3 | 2);
        varint(out, body.len() as u64);
        out.extend_from_slice(body);
    }

    pub fn varint_field(out: &mut Vec<u8>, number: u64, v: u64) {
        varint(out, number << 3);
        varint(out, v);
    }

    /// A float TensorProto with raw data (dims unpacked, as some exporters write them).
    pub fn tensor(name: &str, dims: &[usize], data: &[f32]) -> Vec<u8> {
        let mut t = Vec::new();
        for &d in dims {
            varint_field(&mut t, 1, d as u64);
        }
        varint_field(&mut t, 2, 1);
        bytes_field(&mut t, 8, name.as_bytes());
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        bytes_field(&mut t, 9, &raw);
        t
    }

    /// A ModelProto whose graph holds `tensors` as initializers, plus a node and an
    /// opset entry to skip.
    pub fn model(tensors: &[Vec<u8>]) -> Vec<u8> {
        let mut graph = Vec::new();
        bytes_field(&mut graph, 1, b"\x0a\x01x"); // a NodeProto with one input
        for t in tensors {
            bytes_field(&mut graph, 5, t);
        }
        let mut model = Vec::new();
        varint_field(&mut model, 1, 8); // ir_version
        bytes_field(&mut model, 8, b"\x10\x0f"); // opset_import { version: 15 }
        bytes_field(&mut model, 7, &graph);
        model
    }
}

#[cfg(test)]
mod tests {
    use super::encode::*;
    use super::*;

    #[test]
    fn reads_float_initializers_and_skips_the_rest() {
        let mut int_tensor = Vec::new();
        varint_field(&mut int_tensor, 1, 1);
        varint_field(&mut int_tensor, 2, 7); // INT64
        bytes_field(&mut int_tensor, 8, b"shape");
        bytes_field(&mut int_tensor, 9, &5i64.to_le_bytes());
        let model = model(&[
            tensor("model.a", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            int_tensor,
            tensor("model.b", &[1], &[-0.5]),
        ]);
        let tensors = initializers(&model).unwrap();
        assert_eq!(tensors.len(), 2);
        assert_eq!(tensors[0].name, "model.a");
        assert_eq!(tensors[0].dims, vec![2, 3]);
        assert_eq!(tensors[0].data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(tensors[1].data, vec![-0.5]);
    }

    #[test]
    fn packed_dims_and_float_data() {
        let mut t = Vec::new();
        let mut dims = Vec::new();
        varint(&mut dims, 2);
        varint(&mut dims, 2);
        bytes_field(&mut t, 1, &dims);
        varint_field(&mut t, 2, 1);
        bytes_field(&mut t, 8, b"packed");
        let floats: Vec<u8> = [1.5f32, 2.5, 3.5, 4.5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        bytes_field(&mut t, 4, &floats);
        let tensors = initializers(&model(&[t])).unwrap();
        assert_eq!(tensors[0].dims, vec![2, 2]);
        assert_eq!(tensors[0].data, vec![1.5, 2.5, 3.5, 4.5]);
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let good = model(&[tensor("model.a", &[2], &[1.0, 2.0])]);
        for cut in [1, good.len() / 2, good.len() - 1] {
            let err = initializers(&good[..cut]).unwrap_err().to_string();
            assert!(err.contains("ONNX"), "{err}");
        }
        let err = initializers(b"").unwrap_err().to_string();
        assert!(err.contains("no graph"), "{err}");
        let err = initializers(&model(&[tensor("model.a", &[3], &[1.0, 2.0])]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.a") && err.contains("8 bytes"), "{err}");
        let huge = model(&[tensor("h", &[usize::MAX, 4], &[])]);
        assert!(initializers(&huge)
            .unwrap_err()
            .to_string()
            .contains("overflows"));
        let mut external = tensor("model.e", &[1], &[1.0]);
        varint_field(&mut external, 14, 1);
        let err = initializers(&model(&[external])).unwrap_err().to_string();
        assert!(err.contains("external"), "{err}");
    }
}
