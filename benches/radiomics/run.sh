#!/bin/bash
# Official radiomics step (TotalSegmentator's get_radiomics_features_for_entire_dir:
# pyradiomics + SimpleITK) vs ours (examples/radiomics.rs) on the same CT and class masks,
# alternating runs (wall time and peak RSS from /usr/bin/time), then the two JSON files
# compared value by value.
#   benches/radiomics/run.sh [RUNS]
# The case: the shared example_ct_sm.nii.gz and its official label map example_seg.nii.gz
# (real weights, 41 classes), upsampled to 1.5 mm (244x202x60 voxels; image order 1, labels
# nearest) so that pyradiomics resamples with its cubic B-spline; 117 mask files.
# Needs TotalSegmentator + pyradiomics + scipy, and `cargo build --release --example radiomics`.
set -euo pipefail
runs=${1:-3}
python3 -c "import radiomics" 2>/dev/null || { echo "pyradiomics is not installed (see the header)" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
PYTHONPATH="$repo/benches/common" python3 - "$repo/../shared/data/totalseg-examples" "$work" <<'PY'
import sys
from pathlib import Path
import nibabel as nib, numpy as np
from totalsegmentator.map_to_binary import class_map
from example_at_1_5mm import example_at_1_5mm
shared, work = Path(sys.argv[1]), Path(sys.argv[2])
image, labels, affine = example_at_1_5mm(shared)
nib.save(nib.Nifti1Image(image, affine), work / "ct.nii.gz")
(work / "masks").mkdir()
for label, name in class_map["total"].items():
    nib.save(nib.Nifti1Image((labels == label).astype(np.uint8), affine), work / "masks" / f"{name}.nii.gz")
print("case:", image.shape, "voxels at 1.5 mm,", len(np.unique(labels)) - 1, "classes present")
PY
for i in $(seq "$runs"); do
  /usr/bin/time -f "%e %M" -o "$work/time" python3 -c "
import sys; from pathlib import Path
from totalsegmentator.statistics import get_radiomics_features_for_entire_dir
get_radiomics_features_for_entire_dir(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
" "$work/ct.nii.gz" "$work/masks" "$work/official.json" > /dev/null 2>&1
  read -r t m < "$work/time"; echo "official run $i: $t s, peak RSS $((m / 1024)) MiB"
  /usr/bin/time -f "%e %M" -o "$work/time" \
    "$repo/target/release/examples/radiomics" "$work/ct.nii.gz" "$work/masks" "$work/ours.json" > /dev/null
  read -r t m < "$work/time"; echo "ours run $i: $t s, peak RSS $((m / 1024)) MiB"
done
python3 - "$work/official.json" "$work/ours.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert list(a) == list(b), "structures differ"
values = [(s, k, v, b[s].get(k)) for s in a for k, v in a[s].items()]
diff = [(s, k, v, w) for s, k, v, w in values if v != w]
print(f"{len(a)} structures, {len(values)} values, {len(diff)} differ")
for s, k, v, w in diff[:20]:
    print(f"  {s}.{k}: official {v} ours {w}")
print("JSON text identical:", open(sys.argv[1]).read() == open(sys.argv[2]).read())
PY
