#!/usr/bin/env python3
"""Generate the Rust task/class registry data of `totalseg-core` from the installed
TotalSegmentator package, so the tables are the package's own truth.

Usage (from the repository root):

    python3 tools/gen_task_registry.py

Writes `totalseg-core/src/tasks/data/{class_maps,tasks,weights}.rs`. Only pure-data modules
are imported (`map_to_binary`, `map_tasks_config`, `registry`); logic that lives in code
(`python_api.py`, `nnunet.py`) is re-implemented by hand in Rust and guarded here by
`check_source_rules`, which fails loudly when the installed sources no longer contain the
rules the Rust side copies (step size, crop pre-pass models, crop margin, part maps, ...).
"""

import ast
import importlib.metadata
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

from totalsegmentator import map_to_binary as mtb
from totalsegmentator.map_tasks_config import DEFAULT_CONFIG, TASK_CONFIGS, TASK_ID_WEIGHTS_CONFIGS
from totalsegmentator.registry import TASKS, requires_license, task_modality

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = REPO_ROOT / "totalseg-core" / "src" / "tasks" / "data"
COMMAND = "python3 tools/gen_task_registry.py"

# `test` is a developer task: its weights (517) have no download entry and its `crop` is the
# string "body" (python_api.py iterates it character by character), so it cannot run in 2.18.
SKIPPED_TASKS = {"test": "developer task: no weights entry for dataset 517, `crop` is a bare string"}

# nnunet.py picks the multi-part tables by task name in an if-chain; mirrored here and verified
# against the source in `check_source_rules`.
PART_FAMILIES = [
    ("total", "class_map_5_parts", "map_taskid_to_partname_ct"),
    ("total_v3", "class_map_5_parts_total_v3", "map_taskid_to_partname_ct_v3"),
    ("total_mr", "class_map_parts_mr", "map_taskid_to_partname_mr"),
    ("headneck_muscles", "class_map_parts_headneck_muscles", "map_taskid_to_partname_headneck_muscles"),
]

# Source snippets (whitespace-normalised) whose presence proves the hand-written Rust rules
# still match the installed package.
SOURCE_RULES = {
    "nnunet.py": [
        # step size 0.8 only for the total family (task_name of the prediction)
        'if task_name in ["total", "total_v3", "total_mr"]: step_size = 0.8 else: step_size = 0.5',
        # multi-part tables per task
        'if task_name == "total": class_map_parts = class_map_5_parts map_taskid_to_partname = map_taskid_to_partname_ct',
        'elif task_name == "total_v3": class_map_parts = class_map_5_parts_total_v3 map_taskid_to_partname = map_taskid_to_partname_ct_v3',
        'elif task_name == "total_mr": class_map_parts = class_map_parts_mr map_taskid_to_partname = map_taskid_to_partname_mr',
        'elif task_name == "headneck_muscles": class_map_parts = class_map_parts_headneck_muscles map_taskid_to_partname = map_taskid_to_partname_headneck_muscles',
        # triple split threshold and margin
        "nr_voxels_thr = 512*512*900",
        "do_triple_split = np.prod(ss) > nr_voxels_thr and ss[2] > 200 and multimodel",
        "margin = 20",
        # task specific postprocessing
        "img_pred = remove_auxiliary_labels(img_pred, task_name)",
        'if task_name == "body": img_pred_pp = keep_largest_blob_multilabel(img_pred.get_fdata().astype(np.uint8), class_map[task_name], ["body_trunc"], debug=False, quiet=quiet)',
        'size_thr_mm3 = 50000 img_pred_pp = remove_small_blobs_multilabel(img_pred.get_fdata().astype(np.uint8), class_map[task_name], ["body_extremities"],',
        'if task_name == "vertebrae_pp":',
        "size_thr_mm3 = 200 if remove_small_blobs is True else remove_small_blobs",
        'if task_name == "body" and not multilabel_image and not no_derived_masks:',
    ],
    "python_api.py": [
        # crop pre-pass model choice
        'crop_model_task = 852 if task.endswith("_mr") else 297 crop_spacing = 3.0',
        "crop_model_task = 298 crop_spacing = 6.0",
        'if task.endswith("_mr"): crop_model_task = 852 crop_spacing = 3.0',
        'if task.endswith("_mr") or modality == "mr": crop_task = "total_mr" else: crop_task = "total"',
        'crop_trainer = "nnUNetTrainer_2000epochs_NoMirroring" if task.endswith("_mr") else "nnUNetTrainer_4000epochs_NoMirroring"',
        'if crop is not None and ("body_trunc" in crop or "body_extremities" in crop): crop_model_task = 300 crop_spacing = 6.0 crop_trainer = "nnUNetTrainer" crop_task = "body"',
        'organ_seg, _, _ = nnUNet_predict_image(input, None, crop_model_task, model="3d_fullres", folds=[0],',
        # margin of the default crop model overrides the task's crop_addon
        "crop_addon = [20,20,20] if crop_model is None else crop_addon",
        # roi_subset rules
        'if task.endswith("_mr") and roi_subset is not None: roi_subset_robust = roi_subset robust_rs = True',
        'if roi_subset is not None and not task.startswith("total"): raise ValueError("roi_subset only works with task \'total\' or \'total_mr\'")',
        # body_seg pre-pass
        'download_pretrained_weights(300)',
        'body_seg, _, _ = nnUNet_predict_image(input, None, 300, model="3d_fullres", folds=[0], trainer="nnUNetTrainer", tta=False, multilabel_image=True, resample=6.0,',
        "save_binary=True, nr_threads_resampling=nr_thr_resamp, nr_threads_saving=1, crop_addon=crop_addon,",
        # vertebrae_pp_refined extra model
        'vertebrae_body_mask, _, _ = nnUNet_predict_image(input, None, 305, model="3d_fullres", folds=[0], trainer="nnUNetTrainer_DASegOrd0", tta=False, multilabel_image=True, resample=1.5,',
        'crop=None, crop_path=None, task_name="vertebrae_body",',
        'prediction_task = "vertebrae_pp" if task == "vertebrae_pp_refined" else task',
        # total_v3 small model
        'if task == "total_v3" and model_size == "small": config["plans"] = "nnUNetResEncUNetLPlans_8"',
        # sub-mode fallback
        'mode = "fast" if fast else ("fastest" if fastest else "default") if mode not in raw_task["sub_modes"]: # Fall back to default if \'fastest\' requested but only \'fast\' defined (e.g., body tasks) mode = "fast" if fast or fastest else "default"',
        'if raw_task.get("disallow_fast") and fast: raise ValueError(f"task {task} does not work with option --fast")',
    ],
    "libs.py": [
        'url = "https://github.com/wasserth/TotalSegmentator/releases/download"',
        'WEIGHTS_URL = f"{url}/{version}/{filename}.zip"',
        "download_url_and_unpack(WEIGHTS_URL, weights_path.parent)",
    ],
}

# Official outputs whose label-name extension must equal our class maps (checked when present).
EXAMPLE_OUTPUTS = [
    ("example_seg.nii.gz", "total", None),
    ("example_seg_fast.nii.gz", "total", None),
    ("example_seg_mr.nii.gz", "total_mr", None),
    ("example_seg_roi_subset.nii.gz", "total", ["liver", "brain"]),
]
EXAMPLES_DIR = REPO_ROOT.parent / "shared" / "data" / "totalseg-examples"


def check_example_outputs():
    """The Caret XML label table (NIfTI extension code 0) of official outputs equals our maps."""
    import re
    import nibabel as nib

    for file_name, task, roi_subset in EXAMPLE_OUTPUTS:
        path = EXAMPLES_DIR / file_name
        if not path.exists():
            print(f"note: {path} not found, label-extension check skipped")
            continue
        extensions = [e for e in nib.load(path).header.extensions if e.get_code() == 0]
        xml = extensions[0].get_content().decode("utf-8")
        found = [(int(k), v) for k, v in re.findall(r'<Label Key="(\d+)"[^>]*><!\[CDATA\[(.*?)\]\]></Label>', xml)]
        expected = [(k, v) for k, v in mtb.class_map[task].items() if roi_subset is None or v in roi_subset]
        if found != expected:
            sys.exit(f"{file_name}: label extension differs from class_map[{task!r}]")
        print(f"checked {file_name}: {len(found)} labels equal class_map[{task!r}]")


def package_file(name):
    spec = importlib.util.find_spec("totalsegmentator")
    return Path(spec.origin).parent / name


def normalise(text):
    return " ".join(text.split())


def check_source_rules():
    for file_name, snippets in SOURCE_RULES.items():
        if not snippets:
            continue
        source = normalise(package_file(file_name).read_text())
        for snippet in snippets:
            if normalise(snippet) not in source:
                sys.exit(f"{file_name} no longer contains the rule the Rust code copies:\n  {snippet}")


def default_plans():
    """Default of the `plans` argument of python_api.totalsegmentator (read without importing torch)."""
    tree = ast.parse(package_file("python_api.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "totalsegmentator":
            args = node.args.args
            defaults = node.args.defaults
            offset = len(args) - len(defaults)
            for index, arg in enumerate(args):
                if arg.arg == "plans":
                    return ast.literal_eval(defaults[index - offset])
    sys.exit("could not find the `plans` default of python_api.totalsegmentator")


def rust_str(text):
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def rust_f64(value):
    value = float(value)
    if not math.isfinite(value):
        sys.exit(f"non-finite number {value}")
    text = repr(value)
    return text if ("." in text or "e" in text) else text + ".0"


def rust_str_slice(items):
    return "&[" + ", ".join(rust_str(i) for i in items) + "]"


def header(what):
    version = importlib.metadata.version("TotalSegmentator")
    return (
        f"// @generated by `{COMMAND}` from the installed TotalSegmentator {version}.\n"
        f"// Source: {what}.\n"
        "// Do not edit by hand: rerun the generator.\n\n"
    )


def labels_block(labels, indent):
    pad = " " * indent
    lines = [f"{pad}({k}, {rust_str(v)})," for k, v in labels.items()]
    return "&[\n" + "\n".join(lines) + "\n" + " " * (indent - 4) + "]"


def gen_class_maps():
    out = [header("map_to_binary.py: class_map, class_map_*parts*, map_taskid_to_partname_*")]
    out.append("use super::super::records::{ClassMapRecord, PartRecord};\n\n")
    out.append("/// Every `class_map` entry of `map_to_binary.py` (task maps, `*_auxiliary` maps, `total_v1`, ...),\n")
    out.append("/// labels in the package's order.\n")
    out.append("pub(crate) static CLASS_MAPS: &[ClassMapRecord] = &[\n")
    for key, labels in mtb.class_map.items():
        if key in SKIPPED_TASKS:
            continue
        out.append(f"    ClassMapRecord {{\n        key: {rust_str(key)},\n        labels: {labels_block(labels, 12)},\n    }},\n")
    out.append("];\n\n")
    out.append("/// Per-model label maps of the multi-model tasks, in the order nnunet.py runs and merges them.\n")
    out.append("pub(crate) static PART_MAPS: &[PartRecord] = &[\n")
    for task, parts_name, ids_name in PART_FAMILIES:
        parts = getattr(mtb, parts_name)
        id_to_part = getattr(mtb, ids_name)
        part_to_id = {v: k for k, v in id_to_part.items()}
        for part_name, labels in parts.items():
            if part_name in SKIPPED_TASKS:
                continue
            dataset_id = part_to_id[part_name]
            out.append(
                f"    PartRecord {{\n        task: {rust_str(task)},\n        part_name: {rust_str(part_name)},\n"
                f"        dataset_id: {dataset_id},\n        labels: {labels_block(labels, 12)},\n    }},\n"
            )
    out.append("];\n")
    return "".join(out)


def mode_block(variant, cfg, indent):
    pad = " " * indent
    task_ids = cfg["task_id"] if isinstance(cfg["task_id"], list) else [cfg["task_id"]]
    resample = cfg["resample"]
    if resample is None:
        resolution = "None"
    elif isinstance(resample, (int, float)):
        resolution = "Some([" + ", ".join([rust_f64(resample)] * 3) + "])"
    else:
        assert len(resample) == 3, resample
        resolution = "Some([" + ", ".join(rust_f64(r) for r in resample) + "])"
    crop = cfg["crop"]
    if crop is not None:
        assert isinstance(crop, list), crop
    crop_addon = cfg["crop_addon"]
    assert len(crop_addon) == 3 and all(isinstance(a, int) for a in crop_addon), crop_addon
    folds = cfg["folds"]
    folds_rust = "Folds::AllAvailable" if folds is None else f"Folds::List(&{list(folds)})"
    remove_outside = cfg["remove_outside"]
    dilation = cfg["remove_outside_dilation"]
    assert cfg["remove_mask"] is None and cfg["modality"] is None, (cfg["remove_mask"], cfg["modality"])
    assert cfg["plans"] is None, cfg["plans"]
    fields = [
        f"variant: Variant::{variant}",
        f"dataset_ids: &{task_ids}",
        f"trainer: {rust_str(cfg['trainer'])}",
        f"configuration: {rust_str(cfg['model'])}",
        f"resolution_mm: {resolution}",
        f"crop_classes: {'None' if crop is None else 'Some(' + rust_str_slice(crop) + ')'}",
        f"crop_model: {'None' if cfg['crop_model'] is None else 'Some(' + rust_str(cfg['crop_model']) + ')'}",
        f"crop_addon_mm: {list(crop_addon)}",
        f"robust_crop: {'true' if cfg['robust_crop'] else 'false'}",
        f"cascade: {'true' if cfg['cascade'] else 'false'}",
        f"remove_outside: {'None' if remove_outside is None else 'Some(' + rust_str_slice(remove_outside) + ')'}",
        f"remove_outside_dilation_mm: {'None' if dilation is None else 'Some(' + rust_f64(dilation) + ')'}",
        f"folds: {folds_rust}",
    ]
    inner = "".join(f"{pad}    {f},\n" for f in fields)
    return f"{pad}ModeRecord {{\n{inner}{pad}}},\n"


def gen_tasks():
    out = [header("map_tasks_config.py: DEFAULT_CONFIG, TASK_CONFIGS; registry.py: TASKS, modality, license")]
    out.append("use super::super::records::{Folds, Modality, ModeRecord, TaskRecord, Variant};\n\n")
    out.append(f"/// Version of the TotalSegmentator package these tables were generated from.\n")
    out.append(f"pub const TOTALSEGMENTATOR_VERSION: &str = {rust_str(importlib.metadata.version('TotalSegmentator'))};\n\n")
    out.append("/// Default of the `plans` argument of `totalsegmentator()` (DEFAULT_CONFIG leaves it unset).\n")
    out.append(f"pub(crate) const DEFAULT_PLANS: &str = {rust_str(default_plans())};\n\n")
    out.append("/// Tasks skipped by the generator, with the reason.\n")
    out.append("pub(crate) static SKIPPED_TASKS: &[(&str, &str)] = &[\n")
    for name, reason in SKIPPED_TASKS.items():
        out.append(f"    ({rust_str(name)}, {rust_str(reason)}),\n")
    out.append("];\n\n")
    out.append("/// Every selectable task (registry.TASKS order) with its modes, DEFAULT_CONFIG merged in.\n")
    out.append("pub(crate) static TASK_RECORDS: &[TaskRecord] = &[\n")
    for name in TASKS:
        if name in SKIPPED_TASKS:
            continue
        raw = TASK_CONFIGS[name]
        modes = []
        if "sub_modes" in raw:
            extra = set(raw) - {"sub_modes"}
            assert not extra, (name, extra)
            for mode_name, variant in (("default", "Default"), ("fast", "Fast"), ("fastest", "Fastest")):
                if mode_name in raw["sub_modes"]:
                    cfg = dict(DEFAULT_CONFIG)
                    cfg.update(raw["sub_modes"][mode_name])
                    modes.append(mode_block(variant, cfg, 12))
        else:
            cfg = dict(DEFAULT_CONFIG)
            cfg.update({k: v for k, v in raw.items() if k not in ("disallow_fast", "commercial", "info_msg")})
            modes.append(mode_block("Default", cfg, 12))
        modality = "Mr" if task_modality(name) == "MR" else "Ct"
        licensed = bool(raw.get("commercial", False))
        assert licensed == requires_license(name), name
        info = raw.get("info_msg")
        out.append("    TaskRecord {\n")
        out.append(f"        name: {rust_str(name)},\n")
        out.append(f"        modality: Modality::{modality},\n")
        out.append(f"        licensed: {'true' if licensed else 'false'},\n")
        out.append(f"        disallow_fast: {'true' if raw.get('disallow_fast', False) else 'false'},\n")
        out.append(f"        info_message: {'None' if info is None else 'Some(' + rust_str(info) + ')'},\n")
        out.append(f"        has_sub_modes: {'true' if 'sub_modes' in raw else 'false'},\n")
        out.append("        modes: &[\n" + "".join(modes) + "        ],\n")
        out.append("    },\n")
    out.append("];\n")
    return "".join(out)


def gen_weights():
    out = [header("map_tasks_config.py: TASK_ID_WEIGHTS_CONFIGS; map_to_binary.py: commercial_models; libs.py")]
    out.append("use super::super::records::{DatasetWeights, WeightsSource};\n\n")
    out.append("/// Base of the release download URLs (libs.py `download_pretrained_weights`).\n")
    out.append('pub(crate) const RELEASE_URL_BASE: &str = "https://github.com/wasserth/TotalSegmentator/releases/download";\n\n')
    # libs.py inverts commercial_models, so for a dataset shared by two tasks the last task wins.
    licensed_task_by_id = {v: k for k, v in mtb.commercial_models.items()}
    out.append("/// Weights of every nnU-Net dataset id (integer keys of TASK_ID_WEIGHTS_CONFIGS), package order.\n")
    out.append("pub(crate) static DATASET_WEIGHTS: &[DatasetWeights] = &[\n")
    for dataset_id, info in TASK_ID_WEIGHTS_CONFIGS.items():
        if not isinstance(dataset_id, int):
            continue  # body_stats_* models are not nnU-Net datasets
        assert "rel_path" not in info and not info.get("commercial"), dataset_id
        version = info.get("version")
        if dataset_id in licensed_task_by_id:
            source = f"WeightsSource::LicenseServer {{ task: {rust_str(licensed_task_by_id[dataset_id])} }}"
        elif version is None or version == "TODO":
            source = "WeightsSource::Unreleased"
        else:
            source = f"WeightsSource::GithubRelease {{ tag: {rust_str(version)} }}"
        out.append(
            f"    DatasetWeights {{\n        dataset_id: {dataset_id},\n        folder_name: {rust_str(info['foldername'])},\n"
            f"        source: {source},\n    }},\n"
        )
    out.append("];\n")
    return "".join(out)


def gen_preview_groups():
    # preview.py draws one column per group, each structure in random_colors[its index].
    from totalsegmentator import preview

    out = [header("preview.py: roi_groups")]
    out.append("/// `roi_groups` of `preview.py`: per task, the groups of classes drawn side by side.\n")
    out.append("pub(crate) static PREVIEW_GROUPS: &[(&str, &[&[&str]])] = &[\n")
    for task, groups in preview.roi_groups.items():
        inner = ", ".join(rust_str_slice(g) for g in groups)
        out.append(f"    ({rust_str(task)}, &[{inner}]),\n")
    out.append("];\n")
    return "".join(out)


def main():
    check_source_rules()
    check_example_outputs()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "class_maps.rs").write_text(gen_class_maps())
    (OUT_DIR / "tasks.rs").write_text(gen_tasks())
    (OUT_DIR / "weights.rs").write_text(gen_weights())
    (OUT_DIR / "preview_groups.rs").write_text(gen_preview_groups())
    files = [str(OUT_DIR / n) for n in ("class_maps.rs", "tasks.rs", "weights.rs", "preview_groups.rs")]
    # Emit rustfmt's layout so `cargo fmt` leaves the generated files untouched.
    subprocess.run(["rustfmt", "--edition", "2021", *files], check=True)
    print("wrote " + ", ".join(files))


if __name__ == "__main__":
    main()
