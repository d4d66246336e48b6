#!/usr/bin/env bash
# Regenerates the pictures in docs/ (run from the repository root, in the venv of the README's main job).
#   bash docs/images.sh            the pictures of the shipped generator and its pack (about 2 min):
#                                  samples_prompts.png, samples_red_circle.png, any_sentence.png, web.png
#   bash docs/images.sh --timed    also the benchmark plots (bench.png, bench_1thread.png, synthetic.png;
#                                  about 10 min; timings: run on an idle machine)
# Not here, since they need training runs first: docs/own_art_samples.png (benchmarks/own_art.py, docs/own-art.md).
# Needs the pack of the main job (build/shapes64); web.png needs `(cd examples/web && npm ci)`, selenium
# (the dev extra) and Chromium (Debian: apt-get install chromium chromium-driver).
set -euo pipefail
export HF_HUB_OFFLINE=1
PACK=${PACK:-build/shapes64}
[ -f "$PACK/manifest.json" ] || edge-t2i convert checkpoints/shapes64 --out "$PACK"

python benchmarks/sample_sheet.py checkpoints/shapes64 --prompts docs/sheet_prompts.txt --seeds 8 \
    --out docs/samples_prompts.png
edge-t2i sample checkpoints/shapes64 --prompt "a large red circle in the center" --seeds 0-15 \
    --out docs/samples_red_circle.png
edge-t2i generate "$PACK" --prompt "a tiny violet star near the top left corner" --seeds 0-7 \
    --out docs/any_sentence.png
python examples/web/screenshot.py "$PACK" docs/web.png

if [ "${1:-}" = "--timed" ]; then
    edge-t2i bench "$PACK" --checkpoint checkpoints/shapes64 --json docs/bench.json --plot docs/bench.png
    edge-t2i bench "$PACK" --checkpoint checkpoints/shapes64 --threads 1 --json docs/bench_1thread.json \
        --plot docs/bench_1thread.png
    edge-t2i bench --synthetic 64,128,256 --batch 1,16 --json docs/synthetic.json --plot docs/synthetic.png
fi
