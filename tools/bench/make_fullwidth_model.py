"""Write a synthetic-weight `total --fast` model (dataset 297) at the REAL network widths.

    python3 tools/bench/make_fullwidth_model.py <weights_dir>

Used by the `fast_vs_official` bench binary: both our `totalseg` and the official
TotalSegmentator run on this model, so their speed and memory are those of the real 3 mm model
(PlainConvUNet, 5 stages, 32-64-128-256-320 features, patch [112, 112, 128], 118 outputs),
while the weights are torch's default init (seeded), not the trained release.

Writes <weights_dir>/Dataset297_TotalSegmentator_total_3mm_1559subj/
    nnUNetTrainer_4000epochs_NoMirroring__nnUNetPlans__3d_fullres/{plans.json, dataset.json,
    fold_0/checkpoint_final.pth}
Plans/dataset structure is copied from the committed pipeline fixture (same format, only the
widths differ); labels are background + `class_map["total"]` in class-map order.
Needs torch, nnunetv2 and TotalSegmentator (pip). Deterministic for the same packages.
"""
import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
from totalsegmentator.map_to_binary import class_map

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "fixtures"))
from nnunet_checkpoint import save_nnunet_checkpoint  # noqa: E402

DATASET = "Dataset297_TotalSegmentator_total_3mm_1559subj"
TRAINER = "nnUNetTrainer_4000epochs_NoMirroring"
MODEL_DIR = f"{TRAINER}__nnUNetPlans__3d_fullres"
FIXTURE = REPO / "fixtures" / "pipeline" / "weights" / DATASET / MODEL_DIR

FEATURES = [32, 64, 128, 256, 320]
PATCH = [112, 112, 128]
# Released 297 CTNormalization properties (docs/reference-notes.md); median/min/max unused.
INTENSITY_297 = {"percentile_00_5": -1004.0, "percentile_99_5": 1588.0,
                 "mean": -50.38697721419439, "std": 503.39235619144}
SEED = 297


def make_plans() -> dict:
    if not (FIXTURE / "plans.json").is_file():
        sys.exit(f"missing {FIXTURE} (written by tools/fixtures/make_pipeline_fixtures.py models)")
    plans = json.loads((FIXTURE / "plans.json").read_text())
    cfg = plans["configurations"]["3d_fullres"]
    arch = cfg["architecture"]["arch_kwargs"]
    arch["n_stages"] = 5
    arch["features_per_stage"] = list(FEATURES)
    arch["kernel_sizes"] = [[3, 3, 3]] * 5
    arch["strides"] = [[1, 1, 1]] + [[2, 2, 2]] * 4
    arch["n_conv_per_stage"] = [2] * 5
    arch["n_conv_per_stage_decoder"] = [2] * 4
    cfg["patch_size"] = list(PATCH)
    cfg["spacing"] = [3.0, 3.0, 3.0]
    plans["foreground_intensity_properties_per_channel"]["0"].update(INTENSITY_297)
    return plans


def make_dataset_json() -> dict:
    dataset = json.loads((FIXTURE / "dataset.json").read_text())
    labels = {"background": 0}
    labels.update({name: int(i) for i, name in sorted(class_map["total"].items())})
    dataset["labels"] = labels
    return dataset


def build_network(plans: dict, dataset_json: dict) -> torch.nn.Module:
    """As nnunetv2's trainer builds it (deep supervision on, so every seg head is in the state dict)."""
    pm = PlansManager(copy.deepcopy(plans))
    cm = pm.get_configuration("3d_fullres")
    num_out = pm.get_label_manager(dataset_json).num_segmentation_heads
    return get_network_from_plans(cm.network_arch_class_name, cm.network_arch_init_kwargs,
                                  cm.network_arch_init_kwargs_req_import, 1, num_out,
                                  allow_init=True, deep_supervision=True)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1]) / DATASET / MODEL_DIR
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    plans = make_plans()
    dataset_json = make_dataset_json()
    assert len(dataset_json["labels"]) == 118, len(dataset_json["labels"])
    network = build_network(plans, dataset_json)
    (out / "fold_0").mkdir(parents=True, exist_ok=True)
    (out / "plans.json").write_text(json.dumps(plans, indent=4))
    (out / "dataset.json").write_text(json.dumps(dataset_json, indent=4))
    save_nnunet_checkpoint(out / "fold_0" / "checkpoint_final.pth", network, plans, dataset_json,
                           configuration="3d_fullres", fold=0, trainer_name=TRAINER,
                           with_optimizer_state=False, num_classes=len(dataset_json["labels"]))
    n_params = sum(p.numel() for p in network.parameters())
    print(f"wrote {out} ({n_params} parameters)")


if __name__ == "__main__":
    main()
