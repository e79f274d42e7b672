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
# Order (GPU): the official tool first, alone on the machine, on every case. Then our cold runs:
# on its first GPU run our binary compiles (NVRTC, one thread) and autotunes Burn's kernels into
# <home>/kernel-cache, which takes minutes once per machine; each variant does this on the small
# input in its own home, in parallel with each other and with the network check
# (network_device_vs_cpu: every operator and a full-width network on CUDA against the CPU in
# f32) and pipeline_device_vs_official (the whole GPU pipeline on the committed parity fixtures,
# in f32 and f16, against the official CPU outputs). Last, our measured (warm) runs on every case, with the ratio and the Dice against the
# official output; their fresh homes keep only kernel-cache, so the .pth conversion is timed.
# GPU utilisation, GPU memory and our processes' CPU use are sampled every 5 s into
# $OUT/monitor.log; cubecl's autotune choices go to $OUT/autotune.log. With `fast small` among
# the cases, both tools also run it on the CPU and every GPU output is compared with its CPU
# output (is a mismatch ours or the reference's?); the kernel caches come
# back as $OUT/kernel-cache.tar.xz (carry it as .gpu-bench/kernel-cache.tar.xz to skip the cold
# runs' work on the same kind of GPU).
#
# Env: GPU_BENCH_RUN_TIMEOUT (s per tool run, default 120), GPU_BENCH_COLD_TIMEOUT (s for the
# cold runs, default 300), GPU_BENCH_DEADLINE_S (no warm run starts after this many seconds,
# default 480), GPU_BENCH_CASES (default "total large;fast small"), GPU_BENCH_SKIP_SWCHECK=1,
# GPU_BENCH_SKIP_NETCHECK=1, GPU_BENCH_SKIP_PIPECHECK=1, GPU_BENCH_PIPECHECK (the pipeline
# check's runs as precision:kernel, default "f32:autotune f16:autotune f32:direct"),
# GPU_BENCH_EXTRA_BATCH (our warm runs again at these batch sizes, default "1"; empty: none),
# GPU_BENCH_EXTRA_MEMORY (again with TOTALSEG_GPU_MEMORY set to these, default "exact"; empty:
# none),
# GPU_BENCH_WORK, GPU_BENCH_CARRIED.
#
# Cases (GPU): `total` (5 parts 291-295, 1.5 mm) on the upsampled CT (0.8x0.8x1.0 mm,
# ~458x379x336) and `total --fast` (297, 3 mm) on example_ct.nii.gz. For every run it prints
#   RESULT <tool>/<case> wall_s=.. peak_rss_mib=.. peak_gpu_mib=.. rc=..
# then per case the ratio official/ours and the per-class Dice of ours against the official
# output. Budget: under 10 minutes on an H200 (setup 45 s, official `total` on the large input
# 140 s, cold runs up to GPU_BENCH_COLD_TIMEOUT, warm runs ~1 min).
#
# Our runs print their stage timings (TOTALSEG_TIMINGS=1). Everything printed is also kept in
# $OUT/bench.log.
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
if [ "$CPU_ONLY" = 1 ]; then RUN_TIMEOUT=${GPU_BENCH_RUN_TIMEOUT:-900}; else RUN_TIMEOUT=${GPU_BENCH_RUN_TIMEOUT:-120}; fi
export PYTHONUNBUFFERED=1
WORK=${GPU_BENCH_WORK:-/tmp/totalseg-gpu-bench}
OUT_DIR=${OUT:-$WORK/out}
mkdir -p "$WORK" "$OUT_DIR"
exec > >(tee -a "$OUT_DIR/bench.log") 2>&1
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
  # Appended: the toolkit's NVRTC (same CUDA version as the driver) is found before a pip
  # wheel's, which may be newer than the driver and emit PTX it cannot load.
  if ls "$dir"/libnvrtc.so* >/dev/null 2>&1; then
    export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$dir"
  fi
done
[ "$CPU_ONLY" = 1 ] || nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpu', torch.cuda.is_available())"
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"

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
export RUST_BACKTRACE=1 TOTALSEG_TIMINGS=1
input_path() { if [ "$1" = large ]; then echo "$LARGE"; else echo "$SMALL"; fi; }

# 3. Binaries.
unpack() {  # .gpu-bench/NAME.xz -> $WORK/NAME
  python3 -c "import lzma, sys; open(sys.argv[2], 'wb').write(lzma.decompress(open(sys.argv[1], 'rb').read()))" \
    "$CARRIED/$1.xz" "$WORK/$1" && chmod +x "$WORK/$1"
}
BIN="$WORK/totalseg"
unpack totalseg || { echo "no $CARRIED/totalseg.xz (benches/gpu/prepare.sh)" >&2; exit 1; }
if [ "$CPU_ONLY" = 1 ]; then DEVICE=cpu; else DEVICE=gpu; fi
if [ "$CPU_ONLY" = 0 ] && [ -z "${GPU_BENCH_SKIP_SWCHECK:-}" ] && unpack sliding_window_device_vs_host 2>/dev/null; then
  log "device sliding window on CUDA against the host accumulator"
  timeout 90 "$WORK/sliding_window_device_vs_host" --backend cuda --repeats 1 2>&1 | tail -20
fi
if [ -n "${GPU_BENCH_CASES:-}" ]; then
  IFS=';' read -r -a CASES <<< "$GPU_BENCH_CASES"
elif [ "$CPU_ONLY" = 1 ]; then
  CASES=("fast small")
elif [ "$QUICK" = 1 ]; then
  CASES=("total small" "fast small")
else
  CASES=("total large" "fast small")
fi
RESULTS="$WORK/outputs"
mkdir -p "$RESULTS"
declare -A WALL
# Sets flags, in, ours_out, official_out for "variant input".
case_vars() {
  read -r variant input <<< "$1"
  case_name="$variant/$input"
  flags=(--ml)
  [ "$variant" = fast ] && flags+=(--fast)
  in=$(input_path "$input")
  ours_out="$RESULTS/ours_${variant}_${input}.nii.gz"
  official_out="$RESULTS/official_${variant}_${input}.nii.gz"
}
official_home() {
  local home="$1"
  rm -rf "$home"; mkdir -p "$home"
  echo '{"totalseg_id": "totalseg_BENCH", "send_usage_stats": false, "prediction_counter": 0, "statistics_disclaimer_shown": true}' > "$home/config.json"
}
# Our binary in a fresh home per variant that keeps only its kernel caches (the .pth conversion
# is timed every run); run from $WORK so that $WORK/cubecl.toml (autotune log) applies.
run_ours() {
  local label="$1" limit="$2" home="$WORK/home_ours_$variant" logfile="$3"
  mkdir -p "$home"
  find "$home" -mindepth 1 -maxdepth 1 ! -name kernel-cache -exec rm -rf {} +
  (cd "$WORK" && TOTALSEG_HOME_DIR="$home" python3 "$REPO/benches/gpu/timed.py" "$label" -- \
    timeout "$limit" "$BIN" -i "$in" -o "$ours_out" "${flags[@]}" -d "$DEVICE" --offline -q --weights-dir "$WEIGHTS") \
    > "$logfile" 2>&1
}
# The kernel caches into $OUT (after the cold runs, and again at the end), so that even a call
# cut off later brings them back.
export_kernel_caches() {
  (cd "$WORK" && XZ_OPT=-T0 tar -cJf "$OUT_DIR/kernel-cache.tar.xz" home_ours_*/kernel-cache 2>/dev/null) \
    && echo "kernel caches: $(du -h "$OUT_DIR/kernel-cache.tar.xz" | cut -f1)"
}
if [ "$CPU_ONLY" = 0 ]; then
  printf '[autotune.logger]\nlevel = "minimal"\nfile = "%s"\n' "$OUT_DIR/autotune.log" > "$WORK/cubecl.toml"
  # Sampler: GPU utilisation and memory, our processes' CPU and RSS.
  (while true; do
     echo "$(date +%H:%M:%S) gpu $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader | tr '\n' ' ') ours $(ps -eo comm=,%cpu=,rss= | grep -E '^(totalseg|network_device|pipeline_devic)' | tr '\n' ' ')"
     sleep 5
   done > "$OUT_DIR/monitor.log" 2>&1) &
  MONITOR=$!
  trap 'kill $MONITOR 2>/dev/null' EXIT
fi

# 4. The official tool, alone on the machine: its timings are the reference.
for case in "${CASES[@]}"; do
  case_vars "$case"
  log "official: $case_name"
  official_home "$WORK/home_official"
  TOTALSEG_HOME_DIR="$WORK/home_official" TOTALSEG_WEIGHTS_PATH="$WEIGHTS" \
    python3 benches/gpu/timed.py "official/$case_name" -- \
    timeout "$RUN_TIMEOUT" "${TOTALSEG_PY[@]}" -i "$in" -o "$official_out" "${flags[@]}" -d "$DEVICE" \
    > "$WORK/official.log" 2>&1
  # Its own step timings and the result line (progress bars dropped).
  tr '\r' '\n' < "$WORK/official.log" | grep -vE "it/s\]|s/it\]|^\s*$" | tail -n 15
  WALL["official/$case_name"]=$(grep -o "wall_s=[0-9.]*" "$WORK/official.log" | tail -1 | cut -d= -f2)
done

# 5. GPU: cold runs. A variant's first run compiles (NVRTC, one thread) and autotunes its kernels
#    into <home>/kernel-cache: minutes, once per machine. The variants and the network check do
#    this in parallel on the small input (tuning is per shape, not per image), each in its own
#    home. A kernel-cache.tar.xz carried from an earlier session on the same kind of GPU is
#    unpacked first and makes these runs warm.
if [ "$CPU_ONLY" = 0 ]; then
  [ -f "$CARRIED/kernel-cache.tar.xz" ] && tar -xJf "$CARRIED/kernel-cache.tar.xz" -C "$WORK" && log "unpacked carried kernel caches"
  declare -A COLD
  for case in "${CASES[@]}"; do
    case_vars "$case"
    [ -n "${COLD[$variant]:-}" ] && continue
    COLD[$variant]=1
    in=$SMALL
    ours_out="$RESULTS/cold_${variant}.nii.gz"
    log "ours-cold/$variant/small (background)"
    run_ours "ours-cold/$variant/small" "${GPU_BENCH_COLD_TIMEOUT:-300}" "$WORK/cold_$variant.log" &
  done
  if [ -z "${GPU_BENCH_SKIP_NETCHECK:-}" ] && unpack network_device_vs_cpu 2>/dev/null; then
    log "network check (background)"
    (cd "$WORK" && timeout "${GPU_BENCH_COLD_TIMEOUT:-300}" "$WORK/network_device_vs_cpu" --backend cuda \
      --kernel-cache "$WORK/netcheck-cache" > "$WORK/netcheck.log" 2>&1) &
  fi
  if [ -z "${GPU_BENCH_SKIP_NETCHECK:-}" ] && unpack network_device_vs_cpu_checked 2>/dev/null; then
    # Every autotuned operator's candidate kernels against each other (prepare.sh
    # --autotune-checks): a wrong kernel prints PANIC with the values that differ.
    log "operator check with cubecl's autotune checks (background)"
    (cd "$WORK" && timeout "${GPU_BENCH_COLD_TIMEOUT:-300}" "$WORK/network_device_vs_cpu_checked" \
      --backend cuda --skip-network --kernel-cache "$WORK/checked-cache" > "$WORK/checked.log" 2>&1) &
  fi
  if [ -z "${GPU_BENCH_SKIP_PIPECHECK:-}" ] && unpack pipeline_device_vs_official 2>/dev/null; then
    # The whole GPU pipeline on the committed parity fixtures (small models, official outputs
    # made on the CPU): f32 must match them (Dice >= 0.999); f16 shows what half precision costs.
    log "pipeline check on the parity fixtures (background)"
    # Runs as precision:kernel (TOTALSEG_GPU_CONV: autotune, direct or gemm).
    (timeout "${GPU_BENCH_COLD_TIMEOUT:-300}" bash -c 'for run in $3; do
       echo "PIPECHECK $run"; TOTALSEG_GPU_CONV=${run#*:} "$0" --backend cuda --precision ${run%%:*} \
         --cases fast_ml,total_ml --examples "$1" --kernel-cache "$2"; done' \
       "$WORK/pipeline_device_vs_official" "$CARRIED" "$WORK/pipecheck-cache" \
       "${GPU_BENCH_PIPECHECK:-f32:autotune f16:autotune f32:direct}" > "$WORK/pipecheck.log" 2>&1) &
  fi
  wait_start=$SECONDS
  while [ -n "$(jobs -rp | grep -v "^$MONITOR$")" ]; do sleep 2; done
  log "cold runs done after $((SECONDS - wait_start)) s"
  for variant in "${!COLD[@]}"; do
    tail -n 25 "$WORK/cold_$variant.log"
    echo "kernel-cache $variant: $(du -sh "$WORK/home_ours_$variant/kernel-cache" 2>/dev/null | cut -f1)"
  done
  [ -f "$WORK/netcheck.log" ] && tail -n 30 "$WORK/netcheck.log"
  [ -f "$WORK/checked.log" ] && grep -E "^OP|panicked" "$WORK/checked.log" | cut -c1-400 | head -n 40
  [ -f "$WORK/pipecheck.log" ] && grep -E "^PIPECHECK|^CASE|voxels differ|Dice|PANIC|panicked" "$WORK/pipecheck.log" | head -n 30
  export_kernel_caches
fi

# Our warm run of the current case again with VARIABLE=VALUE; prints its timings and its Dice
# against the default run. Fails (stops the caller's loop) past the deadline or on the CPU.
rerun_with() {
  local variable=$1 value=$2 label=$3
  [ "$CPU_ONLY" = 0 ] && [ "$SECONDS" -le "${GPU_BENCH_DEADLINE_S:-480}" ] || return 1
  local default_out=$ours_out
  ours_out="$RESULTS/ours_$label.nii.gz"
  (export "$variable=$value"; run_ours "ours-$label/$case_name" "$RUN_TIMEOUT" "$WORK/ours_$label.log")
  grep -E "^RESULT|\[timing\]" "$WORK/ours_$label.log" | tail -n 12
  [ -f "$ours_out" ] && [ -f "$default_out" ] && \
    echo "DICE $label vs default $case_name: $(python3 benches/gpu/dice.py "$ours_out" "$default_out" | tr '\n' ' ')"
  rm -f "$ours_out"
  ours_out=$default_out
}

# 6. Ours, warm, on every case; the ratio and Dice against the official output.
for case in "${CASES[@]}"; do
  case_vars "$case"
  if [ "$SECONDS" -gt "${GPU_BENCH_DEADLINE_S:-480}" ]; then
    echo "SKIPPED ours/$case_name: ${SECONDS} s elapsed (GPU_BENCH_DEADLINE_S)"
    continue
  fi
  log "ours: $case_name"
  run_ours "ours/$case_name" "$RUN_TIMEOUT" "$WORK/ours.log"
  tail -n 30 "$WORK/ours.log"
  WALL["ours/$case_name"]=$(grep -o "wall_s=[0-9.]*" "$WORK/ours.log" | tail -1 | cut -d= -f2)
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
  # The same run at other batch sizes (TOTALSEG_BATCH_SIZE) and with exact-size buffers
  # instead of cubecl's memory pools (TOTALSEG_GPU_MEMORY): time and GPU memory of each.
  for batch in ${GPU_BENCH_EXTRA_BATCH-1}; do
    rerun_with TOTALSEG_BATCH_SIZE "$batch" "batch$batch" || break
  done
  for memory in ${GPU_BENCH_EXTRA_MEMORY-exact}; do
    rerun_with TOTALSEG_GPU_MEMORY "$memory" "memory-$memory" || break
  done
done
# 7. GPU, when `fast small` is a case: both tools on the CPU too, and the Dice of every GPU
#    output against its own CPU output. Tells a GPU-side error of ours from one of the reference
#    (the CPU outputs agree to Dice 0.99999 on the development machine).
if [ "$CPU_ONLY" = 0 ] && [[ " ${CASES[*]} " == *"fast small"* ]] && [ "$SECONDS" -le "${GPU_BENCH_DEADLINE_S:-480}" ]; then
  case_vars "fast small"
  gpu_ours=$ours_out gpu_official=$official_out
  ours_out="$RESULTS/ours_cpu_fast_small.nii.gz"
  official_out="$RESULTS/official_cpu_fast_small.nii.gz"
  DEVICE=cpu run_ours "ours-cpu/$case_name" "$RUN_TIMEOUT" "$WORK/ours_cpu.log"
  grep "^RESULT" "$WORK/ours_cpu.log"
  official_home "$WORK/home_official"
  TOTALSEG_HOME_DIR="$WORK/home_official" TOTALSEG_WEIGHTS_PATH="$WEIGHTS" \
    python3 benches/gpu/timed.py "official-cpu/$case_name" -- \
    timeout "$RUN_TIMEOUT" "${TOTALSEG_PY[@]}" -i "$in" -o "$official_out" "${flags[@]}" -d cpu \
    > "$WORK/official_cpu.log" 2>&1
  grep "^RESULT" "$WORK/official_cpu.log"
  for pair in "ours-gpu ours-cpu $gpu_ours $ours_out" "official-gpu official-cpu $gpu_official $official_out" \
      "ours-cpu official-cpu $ours_out $official_out" "ours-gpu official-gpu $gpu_ours $gpu_official"; do
    read -r a b fa fb <<< "$pair"
    if [ -f "$fa" ] && [ -f "$fb" ]; then
      echo "DICE $a vs $b: $(python3 benches/gpu/dice.py "$fa" "$fb" | tr '\n' ' ')"
    else
      echo "DICE $a vs $b: missing output"
    fi
  done
fi
# Back here: the `--fast` small outputs ($OUT holds at most 8 files) and the kernel caches, for the next
# session on this kind of GPU (copy to .gpu-bench/kernel-cache.tar.xz).
cp "$RESULTS"/*fast_small.nii.gz "$OUT_DIR"/ 2>/dev/null
[ "$CPU_ONLY" = 1 ] || export_kernel_caches
# How many kernels were autotuned (each compiles and times every candidate), by kind.
if [ -f "$OUT_DIR/autotune.log" ]; then
  echo "TUNINGS (all runs of this call, each home tunes its own) $(grep -c '^Fastest result' "$OUT_DIR/autotune.log") in all: $(grep '^Fastest result' "$OUT_DIR/autotune.log" \
    | sed -E 's/^Fastest result ([^ ]*-)?([A-Za-z]+Key).*/\2/' | sort | uniq -c | tr -s ' ' | tr '\n' ',')"
fi
log "done"
