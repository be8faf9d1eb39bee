//! Reader for CTranslate2 `model.bin` files.
//!
//! Layout (little-endian, binary version 6):
//!
//! ```text
//! u32 binary_version
//! string spec_name          (u16 length incl. NUL, bytes, NUL)
//! u32 spec_revision
//! u32 n_variables
//!   string name, u8 rank, u32 dims[rank], u8 dtype, u32 n_bytes, bytes data
//! u32 n_aliases
//!   string alias, string target
//! ```

use std::collections::BTreeMap;

use half::{bf16, f16};

use super::ConvertError;

/// The binary versions this reader understands.
pub const SUPPORTED_VERSIONS: &[u32] = &[6];

/// Element type of a CTranslate2 variable (the `dtype` byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float (id 0).
    F32,
    /// 8-bit integer (id 1).
    I8,
    /// 16-bit integer (id 2).
    I16,
    /// 32-bit integer (id 3).
    I32,
    /// IEEE half float (id 4).
    F16,
    /// bfloat16 (id 5).
    BF16,
}

impl DType {
    /// The type of a `dtype` byte; `None` for an unknown one.
    pub fn from_id(id: u8) -> Option<DType> {
        Some(match id {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::BF16,
            _ => return None,
        })
    }

    /// The `dtype` byte.
    pub fn id(self) -> u8 {
        match self {
            DType::F32 => 0,
            DType::I8 => 1,
            DType::I16 => 2,
            DType::I32 => 3,
            DType::F16 => 4,
            DType::BF16 => 5,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }

    /// Whether it is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16)
    }
}

/// One named tensor (or scalar, with an empty shape) of the model.
#[derive(Debug, Clone)]
pub struct Variable {
    /// Dimensions, outermost first (empty for a scalar).
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Raw little-endian element bytes.
    pub data: Vec<u8>,
}

impl Variable {
    /// Number of elements (1 for a scalar).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as `f32`, whatever the stored type (integers are converted as values,
    /// not dequantised; see [`Ct2Model::float_tensor`] for that).
    pub fn to_f32(&self) -> Vec<f32> {
        let d = &self.data;
        match self.dtype {
            DType::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F16 => d
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::BF16 => d
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::I8 => d.iter().map(|&b| b as i8 as f32).collect(),
            DType::I16 => d
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32)
                .collect(),
            DType::I32 => d
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
        }
    }

    /// The value of an integer scalar (such as `encoder/num_heads`).
    pub fn scalar_int(&self) -> Option<i64> {
        if self.len() != 1 {
            return None;
        }
        let d = &self.data;
        Some(match self.dtype {
            DType::I8 => d[0] as i8 as i64,
            DType::I16 => i16::from_le_bytes([d[0], d[1]]) as i64,
            DType::I32 => i32::from_le_bytes([d[0], d[1], d[2], d[3]]) as i64,
            _ => return None,
        })
    }
}

/// A parsed CTranslate2 model: its header and all variables by name.
#[derive(Debug, Clone)]
pub struct Ct2Model {
    /// Binary format version.
    pub version: u32,
    /// Model spec name (`WhisperSpec`).
    pub spec: String,
    /// Spec revision.
    pub revision: u32,
    /// Variables by name.
    pub variables: BTreeMap<String, Variable>,
    /// alias name -> target name
    pub aliases: BTreeMap<String, String>,
}

/// Bounds-checked little-endian cursor; every read names what it was reading so a
/// truncated file reports where it ends.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ConvertError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(ConvertError::Truncated {
                what: what.to_string(),
                offset: self.pos as u64,
                needed: n as u64,
                available: (self.buf.len() - self.pos) as u64,
            }),
        }
    }

    fn u8(&mut self, what: &str) -> Result<u8, ConvertError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, ConvertError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, ConvertError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A CTranslate2 string: u16 length (including the trailing NUL), then the bytes.
    fn string(&mut self, what: &str) -> Result<String, ConvertError> {
        let len = self.u16(what)? as usize;
        let bytes = self.take(len, what)?;
        let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
        String::from_utf8(bytes.to_vec()).map_err(|_| ConvertError::Format {
            what: what.to_string(),
            reason: "name is not valid UTF-8".to_string(),
        })
    }
}

impl Ct2Model {
    /// Parse a whole `model.bin` image.
    pub fn parse(buf: &[u8]) -> Result<Ct2Model, ConvertError> {
        let mut c = Cursor { buf, pos: 0 };

        let version = c.u32("binary version")?;
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(ConvertError::UnsupportedVersion {
                version,
                supported: SUPPORTED_VERSIONS.to_vec(),
            });
        }
        let spec = c.string("spec name")?;
        if spec != "WhisperSpec" {
            return Err(ConvertError::NotWhisper { spec });
        }
        let revision = c.u32("spec revision")?;

        let n_vars = c.u32("variable count")?;
        let mut variables = BTreeMap::new();
        for i in 0..n_vars {
            let name = c.string(&format!("name of variable #{i}"))?;
            let rank = c.u8(&format!("rank of '{name}'"))? as usize;
            let mut shape = Vec::with_capacity(rank);
            for _ in 0..rank {
                shape.push(c.u32(&format!("shape of '{name}'"))? as usize);
            }
            let dtype_id = c.u8(&format!("dtype of '{name}'"))?;
            let dtype = DType::from_id(dtype_id).ok_or_else(|| ConvertError::UnknownDtype {
                name: name.clone(),
                dtype: dtype_id,
            })?;
            let n_bytes = c.u32(&format!("byte count of '{name}'"))? as usize;
            // The element count is multiplied up in the order `Variable::len` does, every
            // partial product checked, so an accepted shape never overflows there either
            // (not even one with a zero dimension after huge ones).
            let expected = shape
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .and_then(|elements| elements.checked_mul(dtype.size()))
                .ok_or_else(|| ConvertError::SizeOverflow {
                    name: name.clone(),
                    shape: shape.clone(),
                })?;
            if n_bytes != expected {
                return Err(ConvertError::Format {
                    what: format!("variable '{name}'"),
                    reason: format!(
                        "{n_bytes} data bytes, but shape {shape:?} of {dtype:?} needs {expected}"
                    ),
                });
            }
            let data = c.take(n_bytes, &format!("data of '{name}'"))?.to_vec();
            variables.insert(name, Variable { shape, dtype, data });
        }

        let n_aliases = c.u32("alias count")?;
        let mut aliases = BTreeMap::new();
        for _ in 0..n_aliases {
            let alias = c.string("alias name")?;
            let target = c.string(&format!("target of alias '{alias}'"))?;
            aliases.insert(alias, target);
        }

        if c.pos != buf.len() {
            return Err(ConvertError::Format {
                what: "model.bin".to_string(),
                reason: format!("{} unexpected trailing bytes", buf.len() - c.pos),
            });
        }

        Ok(Ct2Model {
            version,
            spec,
            revision,
            variables,
            aliases,
        })
    }

    /// Look a variable up by name, following an alias if there is one.
    pub fn get(&self, name: &str) -> Option<&Variable> {
        self.variables.get(name).or_else(|| {
            self.aliases
                .get(name)
                .and_then(|target| self.variables.get(target))
        })
    }

    /// Like [`get`](Self::get) but a missing variable is an error naming it.
    pub fn require(&self, name: &str) -> Result<&Variable, ConvertError> {
        self.get(name)
            .ok_or_else(|| ConvertError::MissingVariable(name.to_string()))
    }

    /// A floating-point tensor as `f32`. Quantised integer weights (`.../weight` stored as
    /// int8 or int16) are dequantised with their per-row `.../weight_scale`:
    /// CTranslate2 stores `q = round(w * scale)`, so `w = q / scale`.
    pub fn float_tensor(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), ConvertError> {
        let var = self.require(name)?;
        if var.dtype.is_float() {
            return Ok((var.shape.clone(), var.to_f32()));
        }
        if !matches!(var.dtype, DType::I8 | DType::I16) {
            return Err(ConvertError::Format {
                what: format!("variable '{name}'"),
                reason: format!(
                    "expected a float or quantised tensor, found {:?}",
                    var.dtype
                ),
            });
        }
        let scale_name = format!("{name}_scale");
        let scale_var = self.require(&scale_name)?;
        let scales = scale_var.to_f32();
        let rows = var.shape.first().copied().unwrap_or(1);
        if rows == 0 || (scales.len() != rows && scales.len() != 1) {
            return Err(ConvertError::ShapeMismatch {
                name: scale_name,
                expected: vec![rows],
                found: scale_var.shape.clone(),
            });
        }
        let row_len = var.len() / rows;
        let mut values = var.to_f32();
        for (r, row) in values.chunks_mut(row_len.max(1)).enumerate() {
            let s = if scales.len() == 1 {
                scales[0]
            } else {
                scales[r]
            };
            for v in row {
                *v /= s;
            }
        }
        Ok((var.shape.clone(), values))
    }
}

/// A `model.bin` image of CTranslate2 binary `version` holding `vars` (name, shape, type,
/// raw little-endian bytes) and `aliases` (alias, target): what [`Ct2Model::parse`]
/// reads, for tests that make synthetic models.
pub fn write_model(
    version: u32,
    vars: &[(&str, &[usize], DType, Vec<u8>)],
    aliases: &[(&str, &str)],
) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&version.to_le_bytes());
    string(&mut out, "WhisperSpec");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
    for (name, shape, dtype, data) in vars {
        string(&mut out, name);
        out.push(shape.len() as u8);
        for &d in *shape {
            out.extend_from_slice(&(d as u32).to_le_bytes());
        }
        out.push(dtype.id());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
    for (a, t) in aliases {
        string(&mut out, a);
        string(&mut out, t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn parses_variables_and_aliases() {
        let img = write_model(
            6,
            &[
                (
                    "a/weight",
                    &[2, 2],
                    DType::F32,
                    f32_bytes(&[1.0, 2.0, 3.0, 4.0]),
                ),
                (
                    "encoder/num_heads",
                    &[],
                    DType::I16,
                    6i16.to_le_bytes().to_vec(),
                ),
            ],
            &[("b/weight", "a/weight")],
        );
        let m = Ct2Model::parse(&img).unwrap();
        assert_eq!(m.version, 6);
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(m.revision, 3);
        assert_eq!(
            m.get("b/weight").unwrap().to_f32(),
            vec![1.0, 2.0, 3.0, 4.0]
        );
        assert_eq!(
            m.require("encoder/num_heads").unwrap().scalar_int(),
            Some(6)
        );
        assert!(matches!(
            m.require("nope"),
            Err(ConvertError::MissingVariable(n)) if n == "nope"
        ));
    }

    #[test]
    fn dequantises_int8_rows() {
        let q: Vec<u8> = [127i8, -127, 64, 0].iter().map(|&x| x as u8).collect();
        let img = write_model(
            6,
            &[
                ("l/weight", &[2, 2], DType::I8, q),
                (
                    "l/weight_scale",
                    &[2],
                    DType::F32,
                    f32_bytes(&[127.0, 64.0]),
                ),
            ],
            &[],
        );
        let m = Ct2Model::parse(&img).unwrap();
        let (shape, w) = m.float_tensor("l/weight").unwrap();
        assert_eq!(shape, vec![2, 2]);
        assert_eq!(w, vec![1.0, -1.0, 1.0, 0.0]);
    }

    #[test]
    fn float16_and_bf16_are_decoded() {
        let h: Vec<u8> = [0.5f32, -2.0]
            .iter()
            .flat_map(|&x| f16::from_f32(x).to_le_bytes())
            .collect();
        let b: Vec<u8> = [0.5f32, -2.0]
            .iter()
            .flat_map(|&x| bf16::from_f32(x).to_le_bytes())
            .collect();
        let img = write_model(
            6,
            &[("h", &[2], DType::F16, h), ("b", &[2], DType::BF16, b)],
            &[],
        );
        let m = Ct2Model::parse(&img).unwrap();
        assert_eq!(m.require("h").unwrap().to_f32(), vec![0.5, -2.0]);
        assert_eq!(m.require("b").unwrap().to_f32(), vec![0.5, -2.0]);
    }

    #[test]
    fn rejects_bad_headers() {
        let img = write_model(5, &[], &[]);
        let err = Ct2Model::parse(&img).unwrap_err();
        assert!(matches!(
            err,
            ConvertError::UnsupportedVersion { version: 5, .. }
        ));
        assert!(err.to_string().contains("version 5"), "{err}");

        let err = Ct2Model::parse(&[6, 0]).unwrap_err();
        assert!(matches!(err, ConvertError::Truncated { .. }), "{err}");
    }

    #[test]
    fn rejects_shapes_whose_size_overflows() {
        const BIG: usize = 1 << 31;
        // 2^64 f32 elements (2^66 bytes); 2^62 elements, 2^64 bytes of f32; a zero
        // dimension only after the partial product has overflowed.
        let shapes: [&[usize]; 3] = [&[BIG, BIG, 4], &[BIG, BIG], &[BIG, BIG, 4, 0]];
        for shape in shapes {
            let img = write_model(
                6,
                &[("encoder/conv1/weight", shape, DType::F32, vec![])],
                &[],
            );
            let err = Ct2Model::parse(&img).unwrap_err();
            assert!(
                matches!(&err, ConvertError::SizeOverflow { name, shape: s }
                    if name == "encoder/conv1/weight" && s == shape),
                "{shape:?}: {err}"
            );
            assert!(err.to_string().contains("'encoder/conv1/weight'"), "{err}");
            assert!(err.to_string().contains("overflows"), "{err}");
        }
    }

    #[test]
    fn zero_dimension_is_an_empty_variable() {
        const BIG: usize = 1 << 31;
        let img = write_model(6, &[("x", &[BIG, BIG, 0], DType::F32, vec![])], &[]);
        let m = Ct2Model::parse(&img).unwrap();
        let x = m.require("x").unwrap();
        assert_eq!(x.len(), 0);
        assert!(x.to_f32().is_empty());
        assert_eq!(m.float_tensor("x").unwrap().1, Vec::<f32>::new());
        // A zero dimension does not excuse data bytes.
        let img = write_model(6, &[("x", &[BIG, 0], DType::F32, vec![0; 4])], &[]);
        assert!(Ct2Model::parse(&img).is_err());
    }

    #[test]
    fn rejects_byte_count_mismatch() {
        let img = write_model(6, &[("x", &[3], DType::F32, vec![0; 8])], &[]);
        let err = Ct2Model::parse(&img).unwrap_err();
        assert!(err.to_string().contains("'x'"), "{err}");
    }
}
