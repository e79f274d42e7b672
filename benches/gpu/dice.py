"""Per-class Dice of two label maps (ours vs the official tool), over the labels present in either.

    python3 benches/gpu/dice.py OURS.nii.gz OFFICIAL.nii.gz

Prints one line: `dice mean=<m> worst=<w> (label <l>: <a> vs <b> voxels) classes=<n> differing_voxels=<d>`
and also checks shape, affine and dtype agree (printed as `geometry ok` or what differs).
"""
import sys

import nibabel as nib
import numpy as np


def dice_per_class(ours: np.ndarray, official: np.ndarray) -> dict:
    labels = np.union1d(np.unique(ours), np.unique(official))
    result = {}
    for label in labels[labels != 0]:
        a = ours == label
        b = official == label
        inter = np.count_nonzero(a & b)
        total = np.count_nonzero(a) + np.count_nonzero(b)
        result[int(label)] = (2.0 * inter / total if total else 1.0, int(a.sum()), int(b.sum()))
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
