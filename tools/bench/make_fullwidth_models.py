"""Write synthetic-weight `total` models at the REAL network widths, in the official nnU-Net layout.

    python3 tools/bench/make_fullwidth_models.py <weights_dir> [dataset ids, default 291 292 293 294 295 297]

For the GPU benchmark (benches/gpu/run.sh): our `totalseg` and the official TotalSegmentator run
on the same models, so their speed and memory are those of the released networks, while the
weights are torch's default init (seeded), not the trained release.

* 291-295 (`total`, 5 parts, 1.5 mm): PlainConvUNet, 6 stages, 32-64-128-256-320-320 features,
  kernels 3x3x3, strides 1 then 2x2x2, patch [128, 128, 128], trainer nnUNetTrainerNoMirroring.
  Labels: the committed fixture's dataset.json (background + the part's class map).
* 297 (`total --fast`, 3 mm): as tools/bench/make_fullwidth_model.py (5 stages up to 320,
  patch [112, 112, 128], 118 outputs).

Plans/dataset structure is copied from the committed pipeline fixtures (fixtures/pipeline/weights,
made by tools/fixtures/make_pipeline_fixtures.py); only the widths, stages and patch differ.
Needs torch, nnunetv2 and TotalSegmentator. Deterministic for the same packages; a model
folder whose checkpoint exists already is kept.
"""
import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "fixtures"))
sys.path.insert(0, str(REPO / "tools" / "bench"))
from nnunet_checkpoint import save_nnunet_checkpoint  # noqa: E402

PARTS = {
    291: "Dataset291_TotalSegmentator_part1_organs_1559subj",
    292: "Dataset292_TotalSegmentator_part2_vertebrae_1532subj",
    293: "Dataset293_TotalSegmentator_part3_cardiac_1559subj",
    294: "Dataset294_TotalSegmentator_part4_muscles_1559subj",
    295: "Dataset295_TotalSegmentator_part5_ribs_1559subj",
}
PART_MODEL_DIR = "nnUNetTrainerNoMirroring__nnUNetPlans__3d_fullres"
PART_TRAINER = "nnUNetTrainerNoMirroring"
PART_FEATURES = [32, 64, 128, 256, 320, 320]
PART_PATCH = [128, 128, 128]
# Released 291-295 CTNormalization properties are close to 297's; only the widths matter here.
INTENSITY = {"percentile_00_5": -1004.0, "percentile_99_5": 1588.0,
             "mean": -50.38697721419439, "std": 503.39235619144}


def part_plans(fixture: Path) -> dict:
    plans = json.loads((fixture / "plans.json").read_text())
    cfg = plans["configurations"]["3d_fullres"]
    arch = cfg["architecture"]["arch_kwargs"]
    n = len(PART_FEATURES)
    arch["n_stages"] = n
    arch["features_per_stage"] = list(PART_FEATURES)
    arch["kernel_sizes"] = [[3, 3, 3]] * n
    arch["strides"] = [[1, 1, 1]] + [[2, 2, 2]] * (n - 1)
    arch["n_conv_per_stage"] = [2] * n
    arch["n_conv_per_stage_decoder"] = [2] * (n - 1)
    cfg["patch_size"] = list(PART_PATCH)
    cfg["spacing"] = [1.5, 1.5, 1.5]
    plans["foreground_intensity_properties_per_channel"]["0"].update(INTENSITY)
    return plans


def write_model(out: Path, plans: dict, dataset_json: dict, trainer: str, seed: int) -> None:
    from make_fullwidth_model import build_network

    checkpoint = out / "fold_0" / "checkpoint_final.pth"
    if checkpoint.is_file():
        print(f"kept {out}")
        return
    torch.manual_seed(seed)
    np.random.seed(seed)
    network = build_network(plans, dataset_json)
    (out / "fold_0").mkdir(parents=True, exist_ok=True)
    (out / "plans.json").write_text(json.dumps(plans, indent=4))
    (out / "dataset.json").write_text(json.dumps(dataset_json, indent=4))
    save_nnunet_checkpoint(checkpoint, network, plans, dataset_json, configuration="3d_fullres",
                           fold=0, trainer_name=trainer, with_optimizer_state=False,
                           num_classes=len(dataset_json["labels"]))
    n_params = sum(p.numel() for p in network.parameters())
    print(f"wrote {out} ({n_params} parameters)")


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    weights = Path(sys.argv[1])
    ids = [int(a) for a in sys.argv[2:]] or [291, 292, 293, 294, 295, 297]
    for dataset_id in ids:
        if dataset_id in PARTS:
            name = PARTS[dataset_id]
            fixture = REPO / "fixtures" / "pipeline" / "weights" / name / PART_MODEL_DIR
            if not (fixture / "plans.json").is_file():
                sys.exit(f"missing {fixture} (tools/fixtures/make_pipeline_fixtures.py models)")
            plans = part_plans(fixture)
            dataset_json = json.loads((fixture / "dataset.json").read_text())
            write_model(weights / name / PART_MODEL_DIR, copy.deepcopy(plans), dataset_json,
                        PART_TRAINER, seed=dataset_id)
        elif dataset_id == 297:
            import make_fullwidth_model as m297

            plans = m297.make_plans()
            dataset_json = m297.make_dataset_json()
            write_model(weights / m297.DATASET / m297.MODEL_DIR, plans, dataset_json,
                        m297.TRAINER, seed=m297.SEED)
        else:
            sys.exit(f"dataset {dataset_id}: only 291-295 and 297 are known")


if __name__ == "__main__":
    main()
