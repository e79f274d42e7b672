//! Converting a whole model folder: read plans, dataset.json and every fold's checkpoint,
//! check them against each other, then write `model.safetensors` and `model.json`.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::architecture::{resolve_architecture, Architecture, NetworkClass};
use crate::dataset::DatasetJson;
use crate::error::ConvertError;
use crate::model_folder::{checkpoint_path, discover_folds, ModelFolderName};
use crate::model_json::{CheckpointSource, ModelJson, Resampling, Source, FORMAT, FORMAT_VERSION};
use crate::output::AtomicOutputs;
use crate::plans::Plans;
use crate::safetensors_writer::{write_safetensors, OutputDType, PlannedTensor};
use crate::state_dict::{select_weights, SelectedWeights};
use crate::torch::NnUnetCheckpoint;

/// Output file names inside the destination folder.
pub const SAFETENSORS_FILE: &str = "model.safetensors";
/// See [`SAFETENSORS_FILE`].
pub const MODEL_JSON_FILE: &str = "model.json";

/// What to convert and how.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertOptions {
    /// dtype of the written tensors.
    pub dtype: OutputDType,
    /// Folds to convert; `None` converts every `fold_<k>` that has a checkpoint.
    pub folds: Option<Vec<u32>>,
    /// Configuration to use instead of the one in the folder name.
    pub configuration: Option<String>,
    /// Checkpoint file name inside each fold folder.
    pub checkpoint_name: String,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            dtype: OutputDType::F32,
            folds: None,
            configuration: None,
            checkpoint_name: "checkpoint_final.pth".into(),
        }
    }
}

/// What a conversion wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertReport {
    /// The written `model.safetensors`.
    pub safetensors_path: PathBuf,
    /// The written `model.json`.
    pub model_json_path: PathBuf,
    /// Configuration used.
    pub configuration: String,
    /// Network class path written.
    pub network_class_name: &'static str,
    /// Folds written.
    pub folds: Vec<u32>,
    /// Tensors per fold.
    pub tensors_per_fold: usize,
    /// Parameters (elements) per fold.
    pub parameters_per_fold: u64,
    /// Alias entries dropped per fold.
    pub aliases_dropped_per_fold: usize,
    /// Integer/bool buffers left out (names, first fold).
    pub skipped_non_float: Vec<String>,
    /// Size of `model.safetensors`.
    pub safetensors_bytes: u64,
}

/// Converts the nnU-Net model folder `src` (`<trainer>__<plans>__<configuration>/`) into
/// `dst/model.safetensors` and `dst/model.json` (see `docs/model-format.md`). Both files are
/// written to temporary names and renamed only when complete.
///
/// ```no_run
/// use weights_converter::{convert_model_folder, ConvertOptions};
/// let report = convert_model_folder(
///     "Dataset297_TotalSegmentator_total_3mm_1559subj/nnUNetTrainer_4000epochs_NoMirroring__nnUNetPlans__3d_fullres".as_ref(),
///     "converted/total_3mm".as_ref(),
///     &ConvertOptions::default(),
/// )?;
/// println!("{} tensors per fold", report.tensors_per_fold);
/// # Ok::<(), weights_converter::ConvertError>(())
/// ```
pub fn convert_model_folder(
    src: &Path,
    dst: &Path,
    options: &ConvertOptions,
) -> Result<ConvertReport, ConvertError> {
    let folder_err = |path: &Path, reason: String| ConvertError::ModelFolder {
        path: path.to_path_buf(),
        reason,
    };
    if !src.is_dir() {
        return Err(folder_err(src, "not a directory".into()));
    }
    let plans_path = src.join("plans.json");
    let dataset_path = src.join("dataset.json");
    for (path, what) in [(&plans_path, "plans.json"), (&dataset_path, "dataset.json")] {
        if !path.is_file() {
            return Err(folder_err(
                path,
                format!("missing {what} (every nnU-Net model folder has one)"),
            ));
        }
    }
    let plans = Plans::load(&plans_path)?;
    let dataset = DatasetJson::load(&dataset_path)?;

    let folds = match &options.folds {
        Some(folds) if folds.is_empty() => return Err(folder_err(src, "empty fold list".into())),
        Some(folds) => {
            let mut folds = folds.clone();
            folds.sort_unstable();
            folds.dedup();
            for &fold in &folds {
                let path = checkpoint_path(src, fold, &options.checkpoint_name);
                if !path.is_file() {
                    return Err(folder_err(
                        &path,
                        format!("fold {fold} was requested but has no checkpoint"),
                    ));
                }
            }
            folds
        }
        None => discover_folds(src, &options.checkpoint_name)?,
    };

    // Hashing reads every checkpoint once more; it runs beside parsing and streaming.
    let checkpoint_paths: Vec<PathBuf> = folds
        .iter()
        .map(|&fold| checkpoint_path(src, fold, &options.checkpoint_name))
        .collect();
    let hashing = {
        let paths = checkpoint_paths.clone();
        std::thread::spawn(move || {
            paths
                .iter()
                .map(|p| sha256_file(p))
                .collect::<Result<Vec<_>, _>>()
        })
    };

    let mut checkpoints = Vec::with_capacity(folds.len());
    let mut sources = Vec::with_capacity(folds.len());
    for (&fold, path) in folds.iter().zip(&checkpoint_paths) {
        let checkpoint = NnUnetCheckpoint::open(path)?;
        sources.push(CheckpointSource {
            fold,
            file: format!("fold_{fold}/{}", options.checkpoint_name),
            sha256: String::new(),
            trainer_name: checkpoint.trainer_name.clone(),
            current_epoch: checkpoint.current_epoch,
        });
        checkpoints.push(checkpoint);
    }

    let folder_name = src
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .and_then(|n| ModelFolderName::parse(&n));
    let first = &checkpoints[0];
    let configuration = choose_configuration(src, options, folder_name.as_ref(), first)?;
    let trainer = folder_name
        .as_ref()
        .map(|n| n.trainer.clone())
        .or_else(|| first.trainer_name.clone())
        .ok_or_else(|| folder_err(src, "folder name is not <trainer>__<plans>__<configuration> and the checkpoint has no trainer_name".into()))?;
    let plans_name = folder_name
        .as_ref()
        .map(|n| n.plans.clone())
        .or_else(|| {
            plans
                .get("plans_name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .ok_or_else(|| plans.error("no `plans_name` and the folder name does not give one"))?;

    let config = plans.resolve_configuration_dict(&configuration)?;
    let mut input_channels = dataset.num_image_channels()?;
    if config.get("previous_stage").is_some_and(|v| !v.is_null()) {
        // Cascade stages also get the previous stage's one-hot segmentation.
        input_channels += dataset.num_foreground_labels()?;
    }
    let num_classes = dataset.num_segmentation_heads()?;
    let architecture =
        resolve_architecture(&config, input_channels, num_classes).map_err(|reason| {
            ConvertError::UnsupportedArchitecture {
                path: plans_path.clone(),
                reason: format!("configuration `{configuration}`: {reason}"),
            }
        })?;

    let mut selections: Vec<SelectedWeights> = Vec::with_capacity(checkpoints.len());
    for checkpoint in &checkpoints {
        let selected = select_weights(&checkpoint.network_weights).map_err(|reason| {
            ConvertError::BadTensor {
                path: checkpoint.path().to_path_buf(),
                tensor: "network_weights".into(),
                reason,
            }
        })?;
        check_against_architecture(checkpoint.path(), &selected, &architecture)?;
        if let Some(reference) = selections.first() {
            check_same_layout(checkpoint.path(), reference, &selected)?;
        }
        selections.push(selected);
    }

    let (labels, channel_names) = dataset.raw_labels_and_channels()?;
    let mut model_json = ModelJson {
        format: FORMAT,
        format_version: FORMAT_VERSION,
        source: Source {
            folder: source_folder_label(src),
            checkpoints: sources,
        },
        dataset_name: plans
            .get("dataset_name")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| dataset_folder_name(src))
            .unwrap_or_default(),
        trainer,
        plans_name,
        configuration: configuration.clone(),
        folds: folds.clone(),
        dtype: options.dtype.name(),
        architecture: architecture.block(),
        patch_size: usize_list(
            &plans,
            &config,
            "patch_size",
            Some(architecture.spatial_dims),
        )?,
        spacing: f64_list(&plans, &config, "spacing", architecture.spatial_dims)?,
        transpose_forward: permutation(&plans, "transpose_forward")?,
        transpose_backward: permutation(&plans, "transpose_backward")?,
        normalization_schemes: typed_list(
            &plans,
            &config,
            "normalization_schemes",
            |v| v.as_str().map(str::to_owned),
            |s| s,
        )?,
        use_mask_for_norm: typed_list(&plans, &config, "use_mask_for_norm", Value::as_bool, |b| b)?,
        foreground_intensity_properties_per_channel: intensity_properties(&plans)?,
        resampling: Resampling::from_configuration(&config),
        labels,
        channel_names,
        inference_allowed_mirroring_axes: first.inference_allowed_mirroring_axes.clone(),
        plans: raw_json(&plans_path, plans.text())?,
        dataset_json: raw_json(&dataset_path, dataset.text())?,
    };
    // Plan the tensors, then stream them fold by fold.
    let mut planned = Vec::new();
    let mut sources_of = Vec::new();
    for (fold_index, (&fold, selected)) in folds.iter().zip(&selections).enumerate() {
        for (entry_index, (name, entry)) in selected.kept.iter().enumerate() {
            planned.push(PlannedTensor {
                name: format!("fold_{fold}.{name}"),
                shape: entry.tensor.shape.clone(),
            });
            sources_of.push((fold_index, entry_index));
        }
    }

    std::fs::create_dir_all(dst).map_err(|source| ConvertError::Write {
        path: dst.to_path_buf(),
        source,
    })?;
    let mut outputs = AtomicOutputs::new(dst, &[SAFETENSORS_FILE, MODEL_JSON_FILE]);
    let safetensors_tmp = outputs.temp_path(0).to_path_buf();
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ConvertError::Write {
            path: path.clone(),
            source,
        }
    };
    let file = File::create(&safetensors_tmp).map_err(write_err(&safetensors_tmp))?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let format_version = FORMAT_VERSION.to_string();
    let metadata = [
        ("format", FORMAT),
        ("format_version", format_version.as_str()),
    ];
    let safetensors_bytes = write_safetensors(
        &mut writer,
        &planned,
        options.dtype,
        &metadata,
        |i| {
            let (fold_index, entry_index) = sources_of[i];
            let entry = &selections[fold_index].kept[entry_index].1;
            checkpoints[fold_index].read_f32(entry)
        },
        write_err(&safetensors_tmp),
    )?;
    let file = writer.into_inner().map_err(|e| ConvertError::Write {
        path: safetensors_tmp.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(write_err(&safetensors_tmp))?;

    let hashes = hashing.join().map_err(|_| ConvertError::ModelFolder {
        path: src.to_path_buf(),
        reason: "checkpoint hashing thread panicked".into(),
    })??;
    for (checkpoint, hash) in model_json.source.checkpoints.iter_mut().zip(hashes) {
        checkpoint.sha256 = hash;
    }
    let json_text =
        serde_json::to_string_pretty(&model_json).map_err(|source| ConvertError::Json {
            path: dst.join(MODEL_JSON_FILE),
            source,
        })?;

    let json_tmp = outputs.temp_path(1).to_path_buf();
    let mut file = File::create(&json_tmp).map_err(write_err(&json_tmp))?;
    file.write_all(json_text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(write_err(&json_tmp))?;
    outputs.commit()?;

    let first_selection = &selections[0];
    Ok(ConvertReport {
        safetensors_path: dst.join(SAFETENSORS_FILE),
        model_json_path: dst.join(MODEL_JSON_FILE),
        configuration,
        network_class_name: architecture.class.class_path(),
        folds,
        tensors_per_fold: first_selection.kept.len(),
        parameters_per_fold: first_selection
            .kept
            .iter()
            .map(|(_, e)| e.tensor.numel().unwrap_or(0) as u64)
            .sum(),
        aliases_dropped_per_fold: first_selection.aliases_dropped,
        skipped_non_float: first_selection.non_float.clone(),
        safetensors_bytes,
    })
}

/// Options override > folder name > the checkpoint's `init_args`; a folder name that
/// disagrees with the checkpoint is an error (nnU-Net itself trusts the checkpoint).
fn choose_configuration(
    src: &Path,
    options: &ConvertOptions,
    folder_name: Option<&ModelFolderName>,
    first: &NnUnetCheckpoint,
) -> Result<String, ConvertError> {
    if let Some(configuration) = &options.configuration {
        return Ok(configuration.clone());
    }
    match (folder_name, &first.configuration) {
        (Some(name), Some(saved)) if &name.configuration != saved => Err(ConvertError::ModelFolder {
            path: src.to_path_buf(),
            reason: format!(
                "folder name says configuration `{}` but {} was trained as `{saved}`; pass the configuration explicitly",
                name.configuration,
                first.path().display()
            ),
        }),
        (Some(name), _) => Ok(name.configuration.clone()),
        (None, Some(saved)) => Ok(saved.clone()),
        (None, None) => Err(ConvertError::ModelFolder {
            path: src.to_path_buf(),
            reason: "folder name is not <trainer>__<plans>__<configuration> and the checkpoint names no configuration".into(),
        }),
    }
}

/// Checks the first conv and the last segmentation head against the plans.
fn check_against_architecture(
    path: &Path,
    selected: &SelectedWeights,
    arch: &Architecture,
) -> Result<(), ConvertError> {
    let mismatch = |reason: String| ConvertError::ArchitectureMismatch {
        path: path.to_path_buf(),
        reason,
    };
    let shape_of = |name: &str| {
        selected
            .kept
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.tensor.shape.clone())
            .ok_or_else(|| mismatch(format!("no tensor `{name}`")))
    };
    let (first_conv, first_channels) = match arch.class {
        NetworkClass::PlainConvUNet => (
            "encoder.stages.0.0.convs.0.conv.weight",
            arch.kwargs.features_per_stage[0],
        ),
        NetworkClass::ResidualEncoderUNet => (
            "encoder.stem.convs.0.conv.weight",
            arch.kwargs
                .stem_channels
                .unwrap_or(arch.kwargs.features_per_stage[0]),
        ),
    };
    let mut expected = vec![first_channels, arch.input_channels];
    expected.extend(&arch.kwargs.kernel_sizes[0]);
    let shape = shape_of(first_conv)?;
    if shape != expected {
        return Err(mismatch(format!(
            "`{first_conv}` has shape {shape:?}, the plans and dataset.json give {expected:?}"
        )));
    }
    if arch.kwargs.n_stages >= 2 {
        let head = format!("decoder.seg_layers.{}.weight", arch.kwargs.n_stages - 2);
        let shape = shape_of(&head)?;
        if shape.first() != Some(&arch.num_classes) {
            return Err(mismatch(format!(
                "`{head}` has shape {shape:?}, but dataset.json gives {} output channels",
                arch.num_classes
            )));
        }
    }
    Ok(())
}

/// Every fold must hold the same names and shapes.
fn check_same_layout(
    path: &Path,
    reference: &SelectedWeights,
    other: &SelectedWeights,
) -> Result<(), ConvertError> {
    let layout = |s: &SelectedWeights| -> Vec<(String, Vec<usize>)> {
        s.kept
            .iter()
            .map(|(n, e)| (n.clone(), e.tensor.shape.clone()))
            .collect()
    };
    let (a, b) = (layout(reference), layout(other));
    if a != b {
        let first_difference = a
            .iter()
            .zip(&b)
            .find(|(x, y)| x != y)
            .map(|(x, y)| format!("`{}` {:?} vs `{}` {:?}", x.0, x.1, y.0, y.1))
            .unwrap_or_else(|| format!("{} vs {} tensors", a.len(), b.len()));
        return Err(ConvertError::ArchitectureMismatch {
            path: path.to_path_buf(),
            reason: format!("this fold's tensors differ from the first fold's: {first_difference}"),
        });
    }
    Ok(())
}

fn sha256_file(path: &Path) -> Result<String, ConvertError> {
    let read_err = |source| ConvertError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(read_err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// `<dataset folder>/<model folder>` of `src`.
fn source_folder_label(src: &Path) -> String {
    let full = src.canonicalize().unwrap_or_else(|_| src.to_path_buf());
    let mut parts: Vec<String> = full
        .components()
        .rev()
        .take(2)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.reverse();
    parts.join("/")
}

fn dataset_folder_name(src: &Path) -> Option<String> {
    let full = src.canonicalize().ok()?;
    Some(full.parent()?.file_name()?.to_string_lossy().into_owned())
}

fn raw_json(path: &Path, text: &str) -> Result<Box<RawValue>, ConvertError> {
    RawValue::from_string(text.trim().to_owned()).map_err(|source| ConvertError::Json {
        path: path.to_path_buf(),
        source,
    })
}

fn config_field<'a>(
    plans: &Plans,
    config: &'a Map<String, Value>,
    key: &str,
) -> Result<&'a Vec<Value>, ConvertError> {
    config
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| plans.error(format!("configuration has no `{key}` list")))
}

fn typed_list<T, U>(
    plans: &Plans,
    config: &Map<String, Value>,
    key: &str,
    get: impl Fn(&Value) -> Option<T>,
    own: impl Fn(T) -> U,
) -> Result<Vec<U>, ConvertError> {
    config_field(plans, config, key)?
        .iter()
        .map(|v| {
            get(v)
                .map(&own)
                .ok_or_else(|| plans.error(format!("`{key}` holds {v}")))
        })
        .collect()
}

fn usize_list(
    plans: &Plans,
    config: &Map<String, Value>,
    key: &str,
    len: Option<usize>,
) -> Result<Vec<usize>, ConvertError> {
    let values: Vec<usize> = typed_list(plans, config, key, Value::as_u64, |v| v as usize)?;
    if len.is_some_and(|n| n != values.len()) {
        return Err(plans.error(format!(
            "`{key}` has {} entries, the network is {}-D",
            values.len(),
            len.unwrap_or(0)
        )));
    }
    Ok(values)
}

fn f64_list(
    plans: &Plans,
    config: &Map<String, Value>,
    key: &str,
    len: usize,
) -> Result<Vec<f64>, ConvertError> {
    let values: Vec<f64> = typed_list(plans, config, key, Value::as_f64, |v| v)?;
    if values.len() != len {
        return Err(plans.error(format!(
            "`{key}` has {} entries, the network is {len}-D",
            values.len()
        )));
    }
    Ok(values)
}

/// A top-level `transpose_*` list, which must be a permutation of `0..n`.
fn permutation(plans: &Plans, key: &str) -> Result<Vec<usize>, ConvertError> {
    let values: Option<Vec<usize>> = plans
        .get(key)
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(|v| v.as_u64().map(|u| u as usize)).collect());
    let values = values.ok_or_else(|| plans.error(format!("no `{key}` list of ints")))?;
    let mut sorted = values.clone();
    sorted.sort_unstable();
    if sorted != (0..values.len()).collect::<Vec<_>>() {
        return Err(plans.error(format!("`{key}` {values:?} is not a permutation")));
    }
    Ok(values)
}

/// `foreground_intensity_properties_per_channel`, or the older `..._by_modality`.
fn intensity_properties(plans: &Plans) -> Result<Value, ConvertError> {
    plans
        .get("foreground_intensity_properties_per_channel")
        .or_else(|| plans.get("foreground_intensity_properties_by_modality"))
        .filter(|v| v.is_object())
        .cloned()
        .ok_or_else(|| plans.error("no `foreground_intensity_properties_per_channel` object"))
}
