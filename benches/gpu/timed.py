"""Run a command; print its wall time, peak host RSS and (optionally) peak GPU memory.

    python3 benches/gpu/timed.py LABEL -- COMMAND [ARGS...]

Peak host RSS is `getrusage(RUSAGE_CHILDREN).ru_maxrss`: the largest resident set of any one
process of the command's tree that was waited for (as `/usr/bin/time %M`, which may be absent on
the GPU machine). Peak GPU memory polls `nvidia-smi --query-gpu=memory.used` every 100 ms while the
command runs and reports the maximum minus the value before it started (whole-GPU used memory:
nothing else may run on the GPU meanwhile). Prints one line:

    RESULT <label> wall_s=<s> peak_rss_mib=<m> peak_gpu_mib=<g|na> rc=<code>
"""
import resource
import shutil
import subprocess
import sys
import threading
import time


def gpu_used_mib() -> int | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
        return max(int(v) for v in out.stdout.split()) if out.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(__doc__)
    label, command = sys.argv[1], sys.argv[3:]
    baseline = gpu_used_mib()
    peak = [baseline]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            used = gpu_used_mib()
            if used is not None and (peak[0] is None or used > peak[0]):
                peak[0] = used
            done.wait(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    if baseline is not None:
        poller.start()
    start = time.perf_counter()
    rc = subprocess.call(command)
    wall = time.perf_counter() - start
    done.set()
    if baseline is not None:
        poller.join()
    rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    gpu = "na" if baseline is None else str(peak[0] - baseline)
    print(f"RESULT {label} wall_s={wall:.1f} peak_rss_mib={rss_mib:.0f} peak_gpu_mib={gpu} rc={rc}",
          flush=True)
    sys.exit(rc)


if __name__ == "__main__":
    main()
