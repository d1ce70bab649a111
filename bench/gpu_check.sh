#!/usr/bin/env bash
# The GPU check, in one command: the GPU tests, then the GPU figures; the last line is one JSON object.
#
#     bash bench/gpu_check.sh
#
# 1. tests/test_gpu.py (CUDA only), with the CPU tests of the same code path (mixed precision,
#    devices, checkpoints across devices): at most 3 minutes.
# 2. bench/gpu_figures.py: image GAN images/s in float32, bf16 and fp16 with loss scaling against the
#    lecture-style loop, toy steps/s on the GPU against the CPU, the grid's run-steps/s, peak GPU
#    memory, versions; it starts no section after 3.5 minutes and is stopped at 4.5.
# So it ends within 8 minutes on a modern GPU. It needs nothing from the internet. Without CUDA it
# says so and prints {"cuda": false, ...} within seconds.
set -u
cd "$(dirname "$0")/.." || exit 2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python}

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "No CUDA GPU on this machine (torch.cuda.is_available() is False): the GPU check needs one."
    exec "$PY" bench/gpu_figures.py --device cuda
fi

log=$(mktemp)
timeout 180 "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_gpu.py tests/test_precision.py \
    tests/test_devices.py 2>&1 | tee "$log"
tests_rc=${PIPESTATUS[0]}
summary=$(grep -v '^\s*$' "$log" | tail -n 1)
rm -f "$log"

timeout 270 "$PY" bench/gpu_figures.py --device cuda --budget-s 210 --tests-rc "$tests_rc" --tests-summary "$summary"
figures_rc=$?
if [ "$figures_rc" -ne 0 ]; then   # the figures failed or ran out of time: still one JSON line
    "$PY" -c 'import json, sys; rc, frc, s = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
print(json.dumps({"cuda": True, "gpu_tests": {"passed": rc == 0, "rc": rc, "summary": s},
                  "figures_error": f"bench/gpu_figures.py exited with status {frc}"
                                   + (" (out of time)" if frc == 124 else "")}))' \
        "$tests_rc" "$figures_rc" "$summary"
fi
