#!/bin/bash
# Official totalseg_get_modality / totalseg_get_phase vs `totalseg get-modality` /
# `totalseg get-phase`, alternating runs, whole processes (wall time and peak RSS from
# /usr/bin/time), both on the CPU:
#   modality     get_modality on the shared example_ct.nii.gz (122x101x112): image features only
#   phase -s     get_phase with an existing statistics file (fixtures/classifiers/stats/stats_6.json):
#                the five regressors only
#   phase        get_phase on example_ct.nii.gz with the synthetic-weight total --fast model of
#                fixtures/pipeline/weights: segmentation, statistics, regressors
# Both tools write the same JSON (checked here too). The official commands pay for Python,
# xgboost and torch imports, so these ratios say how long a user waits, not how fast XGBoost is.
#   benches/classifiers/run.sh [RUNS]
# Needs TotalSegmentator 2.18 + xgboost, and `cargo build --release`.
set -euo pipefail
runs=${1:-3}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
ct="$repo/../shared/data/totalseg-examples/example_ct.nii.gz"
stats="$repo/fixtures/classifiers/stats/stats_6.json"
weights="$repo/fixtures/pipeline/weights"
mkdir -p "$work/home"
echo '{"totalseg_id": "totalseg_BENCH", "send_usage_stats": false, "prediction_counter": 0, "statistics_disclaimer_shown": true}' > "$work/home/config.json"
export TOTALSEG_HOME_DIR="$work/home"
timed() { # label, then the command
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > /dev/null 2>&1
  read -r t m < "$work/time"; echo "$label: $t s, peak RSS $((m / 1024)) MiB"
}
for case in modality phase_s phase; do
  echo "== $case"
  case $case in
    modality) official=(totalseg_get_modality -i "$ct" -d cpu -q)
              ours=("$repo/target/release/totalseg" get-modality -i "$ct" -d cpu -q) ;;
    phase_s)  official=(totalseg_get_phase -i "$ct" -s "$stats" -d cpu -q)
              ours=("$repo/target/release/totalseg" get-phase -i "$ct" -s "$stats" -d cpu -q) ;;
    phase)    official=(totalseg_get_phase -i "$ct" -d cpu -q)
              ours=("$repo/target/release/totalseg" get-phase -i "$ct" -d cpu -q --offline --weights-dir "$weights") ;;
  esac
  for i in $(seq "$runs"); do
    TOTALSEG_WEIGHTS_PATH="$weights" timed "official run $i" "${official[@]}" -o "$work/official.json"
    timed "ours run $i" "${ours[@]}" -o "$work/ours.json"
  done
  if cmp -s "$work/official.json" "$work/ours.json"; then echo "same JSON"; else echo "JSON DIFFERS"; fi
done
