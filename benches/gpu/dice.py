"""Per-class Dice of two label maps (ours vs the official tool), over the labels present in either.

    python3 benches/gpu/dice.py OURS.nii.gz OFFICIAL.nii.gz

Prints `geometry ok` (or what differs of shape, affine and dtype), one line per map with its labels
and background fraction, then `dice mean=<m> worst=<w> (label <l>: <a> vs <b> voxels) classes=<n>
differing_voxels=<d>`.
"""
import sys
from pathlib import Path

import nibabel as nib
import numpy as np


def dice_per_class(ours: np.ndarray, official: np.ndarray) -> dict:
    """{label: (dice, voxels in ours, voxels in official)} from one confusion matrix (a bincount
    of the label pairs: one pass over the volume instead of two comparisons per class)."""
    ours = ours.astype(np.int64).ravel()
    official = official.astype(np.int64).ravel()
    k = int(max(ours.max(initial=0), official.max(initial=0))) + 1
    confusion = np.bincount(ours * k + official, minlength=k * k).reshape(k, k)
    in_ours = confusion.sum(axis=1)
    in_official = confusion.sum(axis=0)
    result = {}
    for label in range(1, k):
        total = int(in_ours[label] + in_official[label])
        if total:
            result[label] = (2.0 * int(confusion[label, label]) / total, int(in_ours[label]),
                             int(in_official[label]))
    return result


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ours_img = nib.load(sys.argv[1])
    official_img = nib.load(sys.argv[2])
    ours = np.asarray(ours_img.dataobj)
    official = np.asarray(official_img.dataobj)
    problems = []
    if ours.shape != official.shape:
        sys.exit(f"shape differs: ours {ours.shape}, official {official.shape}")
    if not np.allclose(ours_img.affine, official_img.affine, atol=1e-4):
        problems.append("affine differs")
    if ours.dtype != official.dtype:
        problems.append(f"dtype ours {ours.dtype} official {official.dtype}")
    print("geometry ok" if not problems else "geometry: " + "; ".join(problems))
    # What each map holds: tells an all-background or shifted-label output from a noisy one.
    for name, labels in ((Path(sys.argv[1]).name, ours), (Path(sys.argv[2]).name, official)):
        present = np.unique(labels)
        print(f"{name}: {len(present)} labels {int(present.min())}..{int(present.max())}, "
              f"background {np.count_nonzero(labels == 0) / labels.size:.4f}")
    dice = dice_per_class(ours, official)
    if not dice:
        print("dice mean=1.0 worst=1.0 classes=0 (both empty)")
        return
    worst_label = min(dice, key=lambda k: dice[k][0])
    mean = float(np.mean([d for d, _, _ in dice.values()]))
    w, a, b = dice[worst_label]
    print(f"dice mean={mean:.6f} worst={w:.6f} (label {worst_label}: {a} vs {b} voxels) "
          f"classes={len(dice)} differing_voxels={int(np.count_nonzero(ours != official))}")


if __name__ == "__main__":
    main()
