#!/usr/bin/env bash
# The GPU half of issue 4, as one prepared run for a session that is lent a CUDA machine:
#   bash benchmarks/gpu_check.sh          # from the repo root; a few minutes on an H100/H200
# Needs python3 with torch (CUDA), numpy, scipy, safetensors and pytest (`import prunelab` pulls in no
# transformers, librosa or jiwer); the last step (the --shape run) also needs transformers, soundfile, librosa.  Prints the card, runs the CUDA tests of the engine,
# then clusters the 512 linear layers of a Whisper-large-v3-shaped model (random weights, real
# shapes) at 50% and 10% sparsity, once with the default init (Ward for K >= N/2) and once with
# k-means++, timed side by side.  Target: <= 2 s at 50% (BENCHMARKS.md, section 2).
set -uo pipefail
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
status=0
python3 -m pytest -q -p no:cacheprovider tests/kmeans -k "cuda or accelerator or batched" || status=1
for sparsity in 0.5 0.1; do
  python3 benchmarks/bench_compress_model.py --large-v3 --sparsity "$sparsity" --init auto,k-means++ ${LIMIT:+--limit "$LIMIT"} || status=1
done
# The whole library path at real shapes on the card (issue 12): load, compress() uniform 20 %, a 10 s clip,
# peak GPU memory, for Whisper-medium and -large-v3 shapes (random weights); SHAPES=0 skips it. Needs
# transformers (the model classes); a few minutes at most.
if [ "${SHAPES:-1}" != "0" ]; then
  timeout 420 python3 benchmarks/bench_compress_model.py --shape medium,large-v3 --dtype float32 || status=1
fi
exit $status
