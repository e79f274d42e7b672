//! Giving meaning to the calls torch records in its pickles: tensor rebuilds, storages,
//! numpy scalars, devices.

use crate::pickle::{Heap, Object, Value};

use super::tensor::{StorageDType, TensorRef};

/// Nesting limit for wrapper calls (`_rebuild_parameter(_rebuild_tensor_v2(...))`), so crafted
/// self-referencing pickles cannot recurse without end.
const MAX_WRAPPER_DEPTH: usize = 16;

/// Reads `value` as a tensor: `torch._utils._rebuild_tensor_v2` / `_v3` / `_rebuild_tensor`,
/// possibly wrapped in `_rebuild_parameter(_with_state)` or `torch._tensor._rebuild_from_type_v2`.
pub fn tensor_ref(heap: &Heap, value: &Value) -> Result<TensorRef, String> {
    tensor_ref_at_depth(heap, value, 0)
}

fn tensor_ref_at_depth(heap: &Heap, value: &Value, depth: usize) -> Result<TensorRef, String> {
    if depth > MAX_WRAPPER_DEPTH {
        return Err("tensor rebuild calls nested too deeply".into());
    }
    let call = match heap.object(value) {
        Some(Object::Call(call)) => call,
        _ => return Err(format!("expected a tensor, found {}", heap.describe(value))),
    };
    let args = heap
        .sequence(&call.args)
        .ok_or_else(|| "tensor rebuild arguments are not a tuple".to_string())?;
    match heap.global(&call.callable) {
        Some(("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor")) => {
            rebuild_tensor(heap, args, None)
        }
        Some(("torch._utils", "_rebuild_tensor_v3")) => {
            // (storage, offset, size, stride, requires_grad, hooks, dtype[, metadata])
            let dtype = args
                .get(6)
                .and_then(|d| heap.global(d))
                .and_then(|(module, name)| (module == "torch").then_some(name))
                .and_then(StorageDType::from_torch_name)
                .ok_or_else(|| "_rebuild_tensor_v3 without a known torch dtype".to_string())?;
            rebuild_tensor(heap, args, Some(dtype))
        }
        Some(("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state")) => {
            let data = args
                .first()
                .ok_or_else(|| "_rebuild_parameter without data".to_string())?;
            tensor_ref_at_depth(heap, data, depth + 1)
        }
        Some(("torch._tensor", "_rebuild_from_type_v2")) => {
            // (func, new_type, args, state): the tensor is func(*args).
            let (func, inner_args) = match args {
                [func, _, inner_args, ..] => (func, inner_args),
                _ => return Err("_rebuild_from_type_v2 needs (func, type, args, state)".into()),
            };
            let inner = heap
                .sequence(inner_args)
                .ok_or_else(|| "_rebuild_from_type_v2 args are not a tuple".to_string())?;
            let (module, name) = heap
                .global(func)
                .ok_or_else(|| "_rebuild_from_type_v2 func is not a global".to_string())?;
            match (module, name) {
                ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => {
                    rebuild_tensor(heap, inner, None)
                }
                ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
                    let data = inner
                        .first()
                        .ok_or_else(|| "_rebuild_parameter without data".to_string())?;
                    tensor_ref_at_depth(heap, data, depth + 1)
                }
                _ => Err(format!("unsupported tensor rebuild {module}.{name}")),
            }
        }
        Some((module, name)) => Err(format!("expected a tensor, found {module}.{name}(...)")),
        None => Err("expected a tensor, found a call of a non-global".into()),
    }
}

/// `(storage, storage_offset, size, stride, ...)`.
fn rebuild_tensor(
    heap: &Heap,
    args: &[Value],
    dtype_override: Option<StorageDType>,
) -> Result<TensorRef, String> {
    let [storage, offset, size, stride, ..] = args else {
        return Err(format!(
            "tensor rebuild needs (storage, offset, size, stride), got {} arguments",
            args.len()
        ));
    };
    let (storage_key, storage_dtype) = storage_ref(heap, storage)?;
    let storage_offset = as_index(offset).ok_or("storage offset is not a non-negative int")?;
    let shape = index_tuple(heap, size).ok_or("size is not a tuple of non-negative ints")?;
    let stride = index_tuple(heap, stride).ok_or("stride is not a tuple of non-negative ints")?;
    if shape.len() != stride.len() {
        return Err(format!(
            "size has {} dims but stride has {}",
            shape.len(),
            stride.len()
        ));
    }
    Ok(TensorRef {
        storage_key,
        dtype: dtype_override.unwrap_or(storage_dtype),
        storage_offset,
        shape,
        stride,
    })
}

/// A storage persistent id: `('storage', <storage type>, key, location, numel)`.
fn storage_ref(heap: &Heap, value: &Value) -> Result<(String, StorageDType), String> {
    let pid = match heap.object(value) {
        Some(Object::PersistentId(pid)) => pid,
        _ => {
            return Err(format!(
                "tensor storage is not a persistent id ({})",
                heap.describe(value)
            ))
        }
    };
    let fields = heap
        .sequence(pid)
        .ok_or("storage persistent id is not a tuple")?;
    let [kind, storage_type, key, ..] = fields else {
        return Err("storage persistent id has fewer than 3 fields".into());
    };
    let is_storage = match kind {
        Value::Str(s) => &**s == "storage",
        Value::Bytes(b) => &**b == b"storage",
        _ => false,
    };
    if !is_storage {
        return Err("persistent id is not a storage".into());
    }
    let dtype = heap
        .global(storage_type)
        .and_then(|(module, name)| matches!(module, "torch" | "torch.storage").then_some(name))
        .and_then(StorageDType::from_torch_name)
        .ok_or_else(|| format!("unsupported storage type {}", heap.describe(storage_type)))?;
    let key = match key {
        Value::Str(s) => s.to_string(),
        Value::Int(i) => i.to_string(),
        _ => return Err("storage key is not a string".into()),
    };
    if key.is_empty() || key.contains('/') || key.contains("..") {
        return Err(format!("storage key {key:?} is not a plain name"));
    }
    Ok((key, dtype))
}

fn as_index(value: &Value) -> Option<usize> {
    match value {
        Value::Int(i) => usize::try_from(*i).ok(),
        _ => None,
    }
}

fn index_tuple(heap: &Heap, value: &Value) -> Option<Vec<usize>> {
    // torch.Size pickles as a plain tuple.
    heap.sequence(value)?.iter().map(as_index).collect()
}

/// A `numpy.core.multiarray.scalar(dtype, bytes)` (or `numpy._core...`) as `f64`, for the
/// float and integer dtypes nnU-Net's logging holds.
pub fn numpy_scalar(heap: &Heap, value: &Value) -> Option<f64> {
    let call = match heap.object(value)? {
        Object::Call(call) => call,
        _ => return None,
    };
    match heap.global(&call.callable)? {
        ("numpy.core.multiarray" | "numpy._core.multiarray", "scalar") => {}
        _ => return None,
    }
    let args = heap.sequence(&call.args)?;
    let (dtype, payload) = (args.first()?, args.get(1)?);
    let bytes: Vec<u8> = match payload {
        Value::Bytes(b) => b.to_vec(),
        // Protocol 2 pickles bytes as `_codecs.encode(<latin-1 text>, 'latin1')`.
        other => codecs_encode(heap, other)?,
    };
    let (code, big_endian) = numpy_dtype(heap, dtype)?;
    let mut raw = bytes;
    if big_endian {
        raw.reverse();
    }
    let arr = |n: usize| -> Option<[u8; 8]> {
        let mut a = [0u8; 8];
        a.get_mut(..n)?.copy_from_slice(raw.get(..n)?);
        Some(a)
    };
    Some(match code.as_str() {
        "f8" => f64::from_le_bytes(arr(8)?),
        "f4" => f64::from(f32::from_le_bytes(arr(4)?[..4].try_into().ok()?)),
        "i8" => i64::from_le_bytes(arr(8)?) as f64,
        "i4" => f64::from(i32::from_le_bytes(arr(4)?[..4].try_into().ok()?)),
        "u8" => u64::from_le_bytes(arr(8)?) as f64,
        "b1" => f64::from(*raw.first()?),
        _ => return None,
    })
}

/// `numpy.dtype(code, align, copy)` plus its `BUILD` state `(version, byteorder, ...)`:
/// the type code and whether it is big-endian.
fn numpy_dtype(heap: &Heap, value: &Value) -> Option<(String, bool)> {
    let call = match heap.object(value)? {
        Object::Call(call) => call,
        _ => return None,
    };
    if heap.global(&call.callable)? != ("numpy", "dtype") {
        return None;
    }
    let code = match heap.sequence(&call.args)?.first()? {
        Value::Str(s) => s.to_string(),
        _ => return None,
    };
    let big_endian = call
        .state
        .as_ref()
        .and_then(|state| heap.sequence(state))
        .and_then(|state| state.get(1))
        .is_some_and(|order| matches!(order, Value::Str(s) if &**s == ">"));
    Some((code, big_endian))
}

/// `_codecs.encode(text, 'latin1')`: how protocol 2 pickles `bytes`.
pub fn codecs_encode(heap: &Heap, value: &Value) -> Option<Vec<u8>> {
    let call = match heap.object(value)? {
        Object::Call(call) => call,
        _ => return None,
    };
    if heap.global(&call.callable)? != ("_codecs", "encode") {
        return None;
    }
    let args = heap.sequence(&call.args)?;
    let text = match args.first()? {
        Value::Str(s) => s.clone(),
        _ => return None,
    };
    let encoding = match args.get(1) {
        Some(Value::Str(s)) => s.to_ascii_lowercase().replace(['-', '_'], ""),
        _ => "utf8".to_string(),
    };
    match encoding.as_str() {
        "latin1" | "iso88591" => text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).ok())
            .collect(),
        "utf8" => Some(text.as_bytes().to_vec()),
        _ => None,
    }
}

/// `torch.device('cuda')` / `torch.device('cuda', 0)` as its string form.
pub fn torch_device(heap: &Heap, value: &Value) -> Option<String> {
    let call = match heap.object(value)? {
        Object::Call(call) => call,
        _ => return None,
    };
    if heap.global(&call.callable)? != ("torch", "device") {
        return None;
    }
    let args = heap.sequence(&call.args)?;
    match args {
        [Value::Str(kind)] => Some(kind.to_string()),
        [Value::Str(kind), Value::Int(index)] => Some(format!("{kind}:{index}")),
        _ => None,
    }
}
