#!/usr/bin/env bash
# Prepares the carried, git-ignored folder .gpu-bench/ for benches/gpu/run.sh (run it HERE, on the
# build machine, before a GPU session):
#   .gpu-bench/totalseg.xz       our release binary built with --features cuda, stripped, xz
#                                (~8 MB instead of ~300 MB; run.sh unpacks it with Python's lzma)
#   .gpu-bench/sliding_window_device_vs_host.xz, network_device_vs_cpu.xz,
#   pipeline_device_vs_official.xz
#                                the bench binaries checking the device sums, the network's
#                                operators and the whole pipeline on CUDA, likewise
#   .gpu-bench/wheels/*.whl      the pure-Python packages the GPU machine lacks, at the versions
#                                installed here (the ones the parity fixtures were made with)
#   .gpu-bench/example_ct.nii.gz, example_ct_sm.nii.gz
#                                the shared example CTs (inputs; never committed)
# and prints the total size (a device call carries the working tree + these, 64 MiB at most).
#
#   benches/gpu/prepare.sh [--skip-build] [--check-stubs] [--autotune-checks]
#
#   --skip-build   keep an existing .gpu-bench/totalseg.xz
#   --autotune-checks
#                  also build network_device_vs_cpu with cubecl's autotune checks (every
#                  autotuned operation runs all its candidate kernels and compares them) as
#                  .gpu-bench/network_device_vs_cpu_checked.xz (a second CUDA build, ~10 min)
#   --check-stubs  also run the official tool here with benches/gpu/stubs shadowing the real
#                  SimpleITK/cc3d/blosc2 (proves the stubs are never called on the benched paths)
#
# Env: CARGO_TARGET_DIR (default target), TOTALSEG_EXAMPLES (default ../shared/data/totalseg-examples).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
SKIP_BUILD=0
CHECK_STUBS=0
AUTOTUNE_CHECKS=0
for arg in "$@"; do
  case "$arg" in
    --autotune-checks) AUTOTUNE_CHECKS=1 ;;
    --skip-build) SKIP_BUILD=1 ;;
    --check-stubs) CHECK_STUBS=1 ;;
    *) echo "unknown argument $arg" >&2; exit 2 ;;
  esac
done
CARRIED="$REPO/.gpu-bench"
EXAMPLES=${TOTALSEG_EXAMPLES:-$REPO/../shared/data/totalseg-examples}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
mkdir -p "$CARRIED/wheels"
# Ignored locally (not through .gitignore, which other benches do not need).
grep -qxF '/.gpu-bench/' .git/info/exclude 2>/dev/null || echo '/.gpu-bench/' >> .git/info/exclude

# cudarc binds the CUDA API of the toolkit it finds at build time, else the newest it knows
# (13.4 for cudarc 0.19). The GPU machines' driver (580) is CUDA 13.0: bind that API, so no
# entry point newer than the driver is ever looked up.
export CUDARC_CUDA_VERSION=${CUDARC_CUDA_VERSION:-13000}
pack() {  # strip and xz-compress a release binary into .gpu-bench/ [as NAME [from TARGET]]
  local name=${2:-$1} from=${3:-$TARGET}
  strip --strip-all -o "$CARRIED/$name" "$from/release/$1"
  python3 -c "import lzma, sys; open(sys.argv[2], 'wb').write(lzma.compress(open(sys.argv[1], 'rb').read(), preset=6))" \
    "$CARRIED/$name" "$CARRIED/$name.xz"
  rm "$CARRIED/$name"
}
if [ "$SKIP_BUILD" = 0 ] || [ ! -f "$CARRIED/totalseg.xz" ]; then
  CARGO_TARGET_DIR="$TARGET" cargo build --release --features cuda --bin totalseg
  pack totalseg
  # The device sliding window on CUDA against the host accumulator (run.sh runs it first).
  # The device sliding window and the network's operators on CUDA against the CPU.
  CARGO_TARGET_DIR="$TARGET" cargo build --release -p totalseg-benches --features cuda \
    --bin sliding_window_device_vs_host --bin network_device_vs_cpu --bin pipeline_device_vs_official
  pack sliding_window_device_vs_host
  pack network_device_vs_cpu
  pack pipeline_device_vs_official
fi
if [ "$AUTOTUNE_CHECKS" = 1 ]; then
  # Its own target folder: the feature rebuilds burn's CUDA crates.
  CARGO_TARGET_DIR="$TARGET/autotune-checks" cargo build --release -p totalseg-benches \
    --features cuda-autotune-checks --bin network_device_vs_cpu
  pack network_device_vs_cpu network_device_vs_cpu_checked "$TARGET/autotune-checks"
fi
cp "$EXAMPLES/example_ct.nii.gz" "$CARRIED/example_ct.nii.gz"
cp "$EXAMPLES/example_ct_sm.nii.gz" "$CARRIED/example_ct_sm.nii.gz"

# Pure-Python packages missing from the GPU image (its package list: numpy, scipy, scikit-image,
# scikit-learn, pandas, matplotlib, seaborn, einops, timm, tqdm, requests, pyarrow ... are there).
PACKAGES=(nnunetv2 TotalSegmentator dynamic_network_architectures acvl_utils batchgenerators
          batchgeneratorsv2 nibabel dicom2nifti pydicom)
rm -f "$CARRIED"/wheels/*.whl
for package in "${PACKAGES[@]}"; do
  version=$(python3 -c "import importlib.metadata as m; print(m.version('$package'))")
  # A wheel where PyPI has one, else build it from the sdist (all of these are pure Python).
  if ! python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation py --abi none --platform any -d "$CARRIED/wheels" "$package==$version"; then
    python3 -m pip wheel -q --no-deps --no-binary=:all: -w "$CARRIED/wheels" "$package==$version"
  fi
done
ls -la "$CARRIED"/wheels
du -sb "$CARRIED" | awk '{printf "carried .gpu-bench: %.1f MiB\n", $1 / 1048576}'
git ls-files -z | xargs -0 du -cb | tail -1 | awk '{printf "tracked working tree: %.1f MiB\n", $1 / 1048576}'

if [ "$CHECK_STUBS" = 1 ]; then
  work=$(mktemp -d)
  mkdir -p "$work/home"
  echo '{"totalseg_id": "totalseg_BENCH", "send_usage_stats": false, "prediction_counter": 0, "statistics_disclaimer_shown": true}' > "$work/home/config.json"
  for flags in "--fast" ""; do
    # shellcheck disable=SC2086
    PYTHONPATH="$REPO/benches/gpu/stubs" TOTALSEG_HOME_DIR="$work/home" \
      TOTALSEG_WEIGHTS_PATH="$REPO/fixtures/pipeline/weights" \
      python3 -c "import sys; sys.argv[0]='TotalSegmentator'; import SimpleITK, cc3d, blosc2; assert all('stubs' in m.__file__ for m in (SimpleITK, cc3d, blosc2)); from totalsegmentator.bin.TotalSegmentator import main; main()" \
      -i "$EXAMPLES/example_ct_sm.nii.gz" -o "$work/out.nii.gz" --ml -d cpu $flags -q
    echo "stubs ok for TotalSegmentator --ml $flags"
  done
  rm -rf "$work"
fi
