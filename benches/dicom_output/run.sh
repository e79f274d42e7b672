#!/bin/bash
# Official TotalSegmentator vs totalseg writing a DICOM output, same session, alternating runs.
#   benches/dicom_output/run.sh SERIES_FOLDER [RUNS] [OUTPUT_TYPE]   (dicom_seg or dicom_rtstruct)
# Uses the synthetic-weight models of fixtures/pipeline/weights (--fast, CPU). Prints each
# run's wall time and the time spent saving: the official "Saved in" line (highdicom) and
# our "[timing] write output" stage. Needs TotalSegmentator + highdicom (+ rt_utils for
# RT-STRUCT) and a release build (cargo build --release).
set -euo pipefail
series=$(realpath "$1"); runs=${2:-3}; kind=${3:-dicom_seg}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home"
echo '{"totalseg_id": "totalseg_BENCH", "send_usage_stats": false, "prediction_counter": 0, "statistics_disclaimer_shown": true}' > "$work/home/config.json"
cp -r "$repo/fixtures/pipeline/weights" "$work/weights"
for i in $(seq "$runs"); do
  rm -rf "$work/out"; mkdir "$work/out"
  s=$(date +%s.%N)
  TOTALSEG_HOME_DIR=$work/home TOTALSEG_WEIGHTS_PATH=$work/weights \
    TotalSegmentator -i "$series" -o "$work/out/official.dcm" --fast -ot "$kind" -d cpu -ns 1 > "$work/official.log" 2>&1
  e=$(date +%s.%N)
  echo "official run $i: wall $(echo "$e - $s" | bc) s, $(grep -o 'Saved in [0-9.]*s' "$work/official.log")"
  s=$(date +%s.%N)
  TOTALSEG_TIMINGS=1 "$repo/target/release/totalseg" -i "$series" -o "$work/out/ours.dcm" --fast -ot "$kind" -d cpu \
    --weights-dir "$repo/fixtures/pipeline/weights" --offline -q > "$work/ours.log" 2>&1
  e=$(date +%s.%N)
  echo "ours run $i: wall $(echo "$e - $s" | bc) s, $(grep -o 'write output: [0-9.]* s' "$work/ours.log")"
  python3 - "$kind" "$work/out/official.dcm" "$work/out/ours.dcm" <<'PY'
import sys
kind, paths = sys.argv[1], sys.argv[2:]
if kind == "dicom_rtstruct":
    import pydicom
    a, b = (pydicom.dcmread(p) for p in paths)
    count = lambda d: sum(len(r.ContourSequence) for r in d.ROIContourSequence)
    same = sum(x.ContourData == y.ContourData for r, q in zip(a.ROIContourSequence, b.ROIContourSequence)
               for x, y in zip(r.ContourSequence, q.ContourSequence))
    print(f"  ROIs {len(a.ROIContourSequence)} vs {len(b.ROIContourSequence)}, contours {count(a)} vs {count(b)}, "
          f"identical contours in order {same}")
    sys.exit(0)
import highdicom as hd
a, b = (hd.seg.segread(p) for p in paths)
va, vb = (s.get_volume(combine_segments=True, relabel=False).array for s in (a, b))
print(f"  segments {a.number_of_segments} vs {b.number_of_segments}, frames {a.NumberOfFrames} vs {b.NumberOfFrames}, "
      f"pixels differing {int((va != vb).sum())} of {va.size}")
PY
done
