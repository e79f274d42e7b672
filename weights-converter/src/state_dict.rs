//! Which state-dict entries become output tensors, and under what names.

use crate::torch::StateDictEntry;

/// Wrapper prefixes added by `DistributedDataParallel` and `torch.compile`.
const WRAPPER_PREFIXES: [&str; 2] = ["module.", "_orig_mod."];

/// The state-dict key without leading `module.` / `_orig_mod.` wrappers.
///
/// ```
/// use weights_converter::state_dict::canonical_name;
/// assert_eq!(canonical_name("module._orig_mod.decoder.seg_layers.4.weight"), "decoder.seg_layers.4.weight");
/// ```
pub fn canonical_name(saved: &str) -> &str {
    let mut name = saved;
    while let Some(rest) = WRAPPER_PREFIXES.iter().find_map(|p| name.strip_prefix(p)) {
        name = rest;
    }
    name
}

/// Whether `name` (canonical) is a second name of a tensor kept under another name:
/// `...all_modules.<i>...` repeats a conv block's `conv` / `norm`, and `decoder.encoder.*`
/// repeats `encoder.*`.
pub fn is_alias(name: &str) -> bool {
    name.contains(".all_modules.") || name.starts_with("decoder.encoder.")
}

/// The entries of one checkpoint that are written, and what was left out.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectedWeights {
    /// `(canonical name, entry)` in saved order.
    pub kept: Vec<(String, StateDictEntry)>,
    /// How many alias entries were dropped.
    pub aliases_dropped: usize,
    /// Canonical names of integer/bool buffers left out (nnU-Net networks have none).
    pub non_float: Vec<String>,
}

/// Drops aliases and non-float buffers; fails when two keys have the same canonical name.
pub fn select_weights(entries: &[StateDictEntry]) -> Result<SelectedWeights, String> {
    let mut selected = SelectedWeights {
        kept: Vec::new(),
        aliases_dropped: 0,
        non_float: Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    for entry in entries {
        let name = canonical_name(&entry.name);
        if !seen.insert(name.to_owned()) {
            return Err(format!(
                "two state-dict keys both name `{name}` once `module.`/`_orig_mod.` are removed"
            ));
        }
        if is_alias(name) {
            selected.aliases_dropped += 1;
        } else if !entry.tensor.dtype.is_float() {
            selected.non_float.push(name.to_owned());
        } else {
            selected.kept.push((name.to_owned(), entry.clone()));
        }
    }
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torch::{StorageDType, TensorRef};

    fn entry(name: &str, dtype: StorageDType) -> StateDictEntry {
        StateDictEntry {
            name: name.into(),
            tensor: TensorRef {
                storage_key: "0".into(),
                dtype,
                storage_offset: 0,
                shape: vec![1],
                stride: vec![1],
            },
        }
    }

    #[test]
    fn drops_aliases_and_integer_buffers() {
        let entries = [
            entry(
                "module.encoder.stages.0.0.convs.0.conv.weight",
                StorageDType::F32,
            ),
            entry(
                "module.encoder.stages.0.0.convs.0.all_modules.0.weight",
                StorageDType::F32,
            ),
            entry(
                "module.decoder.encoder.stages.0.0.convs.0.conv.weight",
                StorageDType::F32,
            ),
            entry("module.decoder.seg_layers.0.weight", StorageDType::F16),
            entry("module.bn.num_batches_tracked", StorageDType::I64),
        ];
        let s = select_weights(&entries).unwrap();
        let names: Vec<&str> = s.kept.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "encoder.stages.0.0.convs.0.conv.weight",
                "decoder.seg_layers.0.weight"
            ]
        );
        assert_eq!(s.aliases_dropped, 2);
        assert_eq!(s.non_float, ["bn.num_batches_tracked"]);
    }

    #[test]
    fn colliding_canonical_names_are_an_error() {
        let entries = [
            entry("module.a.weight", StorageDType::F32),
            entry("a.weight", StorageDType::F32),
        ];
        assert!(select_weights(&entries).is_err());
    }
}
