#!/usr/bin/env bash
# The GPU suite on a leased CUDA machine that has no package index: jax/flax/optax/chex/orbax are
# there, the rest travels as wheels in .whl/ (`bash ../shared/gpu/fetch-wheels.sh` fetches them).
#   BUDGET=480 bash benchmarks/gpu_run.sh [gpu_suite.py options]   -> $OUT/gpu.json, $OUT/gpu_log.txt
#   bash benchmarks/gpu_run.sh imitation [imitation.py --brax options, e.g. brax/walker2d --expert-steps 20000000]
#        -> $OUT/imitation_brax.json/.png, $OUT/imitation_log.txt (the expert's run stays in /tmp/runs: its
#           checkpoint holds every environment's MJX state, too big to bring back)
#   bash benchmarks/gpu_run.sh skills --parts diayn-ant --ant-steps 2000000   [skills.py options]
#        -> $OUT/skills.json (the repository's, with the part added), $OUT/skills_log.txt
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || exit 3
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1; unset MUJOCO_GL
OUT=${OUT:-benchmarks/results}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import jax, flax, optax, chex, brax, gymnax, mujoco, distrax; print('jax', jax.__version__, 'flax',
flax.__version__, 'optax', optax.__version__, 'brax', brax.__version__, 'mujoco', mujoco.__version__, jax.devices())" \
  || exit 4
set -o pipefail
if [ "${1:-}" = "imitation" ]; then
  shift
  python3 benchmarks/imitation.py --runs-dir /tmp/runs --brax "$@" 2>&1 | tee "$OUT/imitation_log.txt"
  rc=$?
  for f in benchmarks/results/imitation_brax.json benchmarks/results/imitation_brax.png; do
    [ -f "$f" ] && [ "$(realpath "$f")" != "$(realpath -m "$OUT/$(basename "$f")")" ] && cp "$f" "$OUT"/
  done
  exit $rc
fi
if [ "${1:-}" = "skills" ]; then
  shift
  python3 benchmarks/skills.py "$@" 2>&1 | tee "$OUT/skills_log.txt"
  rc=$?
  f=benchmarks/results/skills.json
  [ -f "$f" ] && [ "$(realpath "$f")" != "$(realpath -m "$OUT/skills.json")" ] && cp "$f" "$OUT"/
  exit $rc
fi
python3 benchmarks/gpu_suite.py --out "$OUT/gpu.json" --budget "${BUDGET:-480}" "$@" 2>&1 | tee "$OUT/gpu_log.txt"
