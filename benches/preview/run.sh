#!/bin/bash
# Official preview step (TotalSegmentator's generate_preview: fury 0.12 / VTK 9.3 under Xvfb)
# vs ours (examples/preview.rs) on the same CT and label map, alternating runs (wall time and
# peak RSS from /usr/bin/time), then the two PNGs compared.
#   benches/preview/run.sh [RUNS]
# The cases: what a default `total` run hands the preview step, the image and labels at
# 1.5 mm: the shared example_ct_sm.nii.gz and its official label map example_seg.nii.gz
# (real weights), upsampled to 1.5 mm (small: 244x202x60 voxels; image order 1, labels
# nearest), and the same stacked four times along z, every other copy mirrored (tall:
# 244x202x240).
# Needs TotalSegmentator + fury + Xvfb, scipy, and `cargo build --release --example preview`.
set -euo pipefail
runs=${1:-3}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
PYTHONPATH="$repo/benches/common" python3 - "$repo/../shared/data/totalseg-examples" "$work" <<'PY'
import sys
from pathlib import Path
import nibabel as nib, numpy as np
from example_at_1_5mm import example_at_1_5mm
shared, work = Path(sys.argv[1]), Path(sys.argv[2])
image, labels, affine = example_at_1_5mm(shared)
for name, (im, lab) in {
    "small": (image, labels),
    "tall": (np.concatenate([image, image[:, :, ::-1]] * 2, axis=2),
             np.concatenate([labels, labels[:, :, ::-1]] * 2, axis=2)),
}.items():
    (work / name).mkdir()
    nib.save(nib.Nifti1Image(im, affine), work / name / "ct.nii.gz")
    nib.save(nib.Nifti1Image(lab, affine), work / name / "labels.nii.gz")
    print(f"case {name}:", im.shape, "voxels at 1.5 mm,", len(np.unique(lab)) - 1, "classes present")
PY
for case in small tall; do
dir="$work/$case"
echo "== $case"
for i in $(seq "$runs"); do
  /usr/bin/time -f "%e %M" -o "$work/time" python3 -c "
import sys; from pathlib import Path
import nibabel as nib
from totalsegmentator.preview import generate_preview
generate_preview(nib.load(sys.argv[1]), Path(sys.argv[3]), nib.load(sys.argv[2]).get_fdata(), 20, 'total')
" "$dir/ct.nii.gz" "$dir/labels.nii.gz" "$dir/official.png" > /dev/null 2>&1
  read -r t m < "$work/time"; echo "official run $i: $t s, peak RSS $((m / 1024)) MiB"
  /usr/bin/time -f "%e %M" -o "$work/time" \
    "$repo/target/release/examples/preview" "$dir/ct.nii.gz" "$dir/labels.nii.gz" total "$dir/ours.png" > /dev/null
  read -r t m < "$work/time"; echo "ours run $i: $t s, peak RSS $((m / 1024)) MiB"
done
python3 - "$dir/official.png" "$dir/ours.png" <<'PY'
import sys
import numpy as np
from PIL import Image
a, b = (np.asarray(Image.open(p).convert("RGB")).astype(int) for p in sys.argv[1:])
print("size", a.shape[1], "x", a.shape[0], "both" if a.shape == b.shape else f"vs {b.shape}")
d = np.abs(a - b)
fa, fb = a.sum(2) > 0, b.sum(2) > 0
print(f"mean absolute difference {d.mean():.2f}, pixels within 32: {(d.max(2) <= 32).mean():.4f}, "
      f"non-black IoU {(fa & fb).sum() / (fa | fb).sum():.4f}")
PY
done
