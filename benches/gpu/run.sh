#!/usr/bin/env bash
# GPU benchmark: our `totalseg` (built with --features cuda) against the official TotalSegmentator
# on the same GPU, same inputs, same synthetic-weight models at the real network widths.
#
# Runs on a GPU machine with PyTorch and nothing else fetched: the repo working tree plus the
# carried, git-ignored folder .gpu-bench/ that benches/gpu/prepare.sh fills here (stripped,
# xz-compressed release binary, wheels of the missing Python packages, example_ct.nii.gz). Models and the
# upsampled CT are generated on the machine (torch is there) instead of being carried.
#
#   benches/gpu/run.sh [--cpu-only] [--quick]
#
#   --cpu-only  no GPU: generate the models and inputs, run both tools on the CPU on the small
#               input with --fast only (the part that can be checked without a GPU).
#   --quick     only example_ct.nii.gz (skip the ~460x380x340 input).
#
# Cases (GPU): `total` (5 parts 291-295, 1.5 mm) and `total --fast` (297, 3 mm), each on the
# upsampled CT (0.8x0.8x1.0 mm, ~458x379x336) and on example_ct.nii.gz. For every run it prints
#   RESULT <tool>/<case> wall_s=.. peak_rss_mib=.. peak_gpu_mib=.. rc=..
# then per case the ratio official/ours and the per-class Dice of ours against the official
# output. Budget: under 8 minutes on an H100 (model generation ~1 min, official `total` on the
# large input ~1-2 min, ours less).
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
CPU_ONLY=0
QUICK=0
for arg in "$@"; do
  case "$arg" in
    --cpu-only) CPU_ONLY=1 ;;
    --quick) QUICK=1 ;;
    *) echo "unknown argument $arg" >&2; exit 2 ;;
  esac
done
CARRIED=${GPU_BENCH_CARRIED:-$REPO/.gpu-bench}
# Each tool run is cut off after this many seconds so the whole script stays inside 8 minutes.
if [ "$CPU_ONLY" = 1 ]; then RUN_TIMEOUT=${GPU_BENCH_RUN_TIMEOUT:-900}; else RUN_TIMEOUT=${GPU_BENCH_RUN_TIMEOUT:-150}; fi
export PYTHONUNBUFFERED=1
WORK=${GPU_BENCH_WORK:-/tmp/totalseg-gpu-bench}
OUT_DIR=${OUT:-$WORK/out}
mkdir -p "$WORK" "$OUT_DIR"
log() { echo "[$(date +%H:%M:%S)] $*"; }

# 1. Python packages: the carried wheels (pure Python), then stubs for the binary modules the
#    official tool imports but never calls on this path (see benches/gpu/stubs/README.md).
if ! python3 -c "import nnunetv2, totalsegmentator" 2>/dev/null; then
  log "installing carried wheels"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$WORK/site" "$CARRIED"/wheels/*.whl || { echo "wheel install failed" >&2; exit 1; }
  export PYTHONPATH="$WORK/site:$REPO/benches/gpu/stubs${PYTHONPATH:+:$PYTHONPATH}"
fi
python3 -c "import nnunetv2, totalsegmentator, nibabel" || { echo "python packages missing" >&2; exit 1; }
TOTALSEG_PY=(python3 -c "import sys; sys.argv[0]='TotalSegmentator'; from totalsegmentator.bin.TotalSegmentator import main; main()")

# burn-cuda compiles its kernels with NVRTC: make the toolkit's or the pip wheel's library findable.
for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
    $(python3 -c "import nvidia, os; [print(os.path.join(p, d, 'lib')) for p in nvidia.__path__ for d in os.listdir(p)]" 2>/dev/null); do
  if ls "$dir"/libnvrtc.so* >/dev/null 2>&1; then
    export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
done
[ "$CPU_ONLY" = 1 ] || nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

# 2. Models (seeded, full widths) and inputs.
WEIGHTS="$WORK/weights"
log "generating full-width synthetic models"
if [ "$CPU_ONLY" = 1 ]; then MODELS=(297); else MODELS=(291 292 293 294 295 297); fi
python3 tools/bench/make_fullwidth_models.py "$WEIGHTS" "${MODELS[@]}" || exit 1
SMALL="$CARRIED/example_ct.nii.gz"
LARGE="$WORK/ct_0.8x0.8x1.0.nii.gz"
INPUTS=(small)
if [ "$QUICK" = 0 ] && [ "$CPU_ONLY" = 0 ]; then
  [ -f "$LARGE" ] || python3 benches/gpu/make_input.py "$SMALL" "$LARGE" 0.8 0.8 1.0 || exit 1
  INPUTS=(large small)
fi
input_path() { if [ "$1" = large ]; then echo "$LARGE"; else echo "$SMALL"; fi; }

# 3. The two tools, one after the other, each with a fresh home (ours converts the .pth files
#    at start-up, so the conversion is timed too; the official tool reads them directly).
BIN="$WORK/totalseg"
python3 -c "import lzma, sys; open(sys.argv[2], 'wb').write(lzma.decompress(open(sys.argv[1], 'rb').read()))" \
  "$CARRIED/totalseg.xz" "$BIN" && chmod +x "$BIN" || { echo "no $CARRIED/totalseg.xz (benches/gpu/prepare.sh)" >&2; exit 1; }
if [ "$CPU_ONLY" = 1 ]; then DEVICE=cpu; else DEVICE=gpu; fi
if [ "$CPU_ONLY" = 1 ]; then VARIANTS=(fast); else VARIANTS=(total fast); fi
official_home() {
  local home="$1"
  rm -rf "$home"; mkdir -p "$home"
  echo '{"totalseg_id": "totalseg_BENCH", "send_usage_stats": false, "prediction_counter": 0, "statistics_disclaimer_shown": true}' > "$home/config.json"
}
declare -A WALL
for input in "${INPUTS[@]}"; do
  for variant in "${VARIANTS[@]}"; do
    case_name="$variant/$input"
    # Stay inside the device budget: later (smaller) cases are dropped, never the running one.
    if [ "$SECONDS" -gt "${GPU_BENCH_DEADLINE_S:-420}" ]; then
      echo "SKIPPED $case_name: ${SECONDS} s elapsed (GPU_BENCH_DEADLINE_S)"
      continue
    fi
    flags=(--ml)
    [ "$variant" = fast ] && flags+=(--fast)
    in=$(input_path "$input")
    ours_out="$OUT_DIR/ours_${variant}_${input}.nii.gz"
    official_out="$OUT_DIR/official_${variant}_${input}.nii.gz"

    log "ours: $case_name"
    rm -rf "$WORK/home_ours"; mkdir -p "$WORK/home_ours"
    TOTALSEG_HOME_DIR="$WORK/home_ours" python3 benches/gpu/timed.py "ours/$case_name" -- \
      timeout "$RUN_TIMEOUT" "$BIN" -i "$in" -o "$ours_out" "${flags[@]}" -d "$DEVICE" --offline -q --weights-dir "$WEIGHTS" \
      2>&1 | tee "$WORK/ours.log" | grep -E "^RESULT|warn|error|Error" 
    WALL["ours/$case_name"]=$(grep -o "wall_s=[0-9.]*" "$WORK/ours.log" | tail -1 | cut -d= -f2)

    log "official: $case_name"
    official_home "$WORK/home_official"
    TOTALSEG_HOME_DIR="$WORK/home_official" TOTALSEG_WEIGHTS_PATH="$WEIGHTS" \
      python3 benches/gpu/timed.py "official/$case_name" -- \
      timeout "$RUN_TIMEOUT" "${TOTALSEG_PY[@]}" -i "$in" -o "$official_out" "${flags[@]}" -d "$DEVICE" \
      > "$WORK/official.log" 2>&1
    grep -E "^RESULT" "$WORK/official.log"
    grep -iE "error|Traceback" "$WORK/official.log" | head -5
    WALL["official/$case_name"]=$(grep -o "wall_s=[0-9.]*" "$WORK/official.log" | tail -1 | cut -d= -f2)

    ours_s=${WALL["ours/$case_name"]:-}
    official_s=${WALL["official/$case_name"]:-}
    if [ -n "$ours_s" ] && [ -n "$official_s" ]; then
      python3 -c "print(f'RATIO $case_name official/ours = {$official_s / $ours_s:.2f}x')"
    fi
    if [ -f "$ours_out" ] && [ -f "$official_out" ]; then
      echo "DICE $case_name $(python3 benches/gpu/dice.py "$ours_out" "$official_out" | tr '\n' ' ')"
    else
      echo "DICE $case_name: missing output"
    fi
  done
done
log "done"
