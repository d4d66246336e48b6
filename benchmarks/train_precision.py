"""Seconds per training step in float32 and with bf16 autocast (`--amp bf16`), interleaved in one process.

    python benchmarks/train_precision.py --data data/emoji --batch 8 --threads 1

Builds two trainers of the data's recipe (same seed), warms each up, then alternates rounds of `--steps` steps
between them and prints the median seconds per step and the bf16 / float32 ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from edge_t2i.train.config import resolve_recipe
from edge_t2i.train.data import load_data
from edge_t2i.train.ddp import Distributed
from edge_t2i.train.loop import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="an imagefolder")
    parser.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (default 4)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per round (default 8)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    trainers = {}
    with tempfile.TemporaryDirectory() as out:
        for amp in ("off", "bf16"):
            cfg = resolve_recipe({"data": args.data, "out": out, "batch_size": args.batch, "amp": amp,
                                  "threads": args.threads})
            trainer, data = Trainer(cfg, Distributed()), load_data(cfg, True)
            trainer.start(data)
            trainers[amp] = (trainer, data)
        times: dict[str, list[float]] = {k: [] for k in trainers}
        for _ in range(args.rounds):
            for amp, (trainer, data) in trainers.items():
                for _ in range(2):
                    trainer.train_step(data)
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    trainer.train_step(data)
                times[amp].append((time.perf_counter() - t0) / args.steps)
    for amp, values in times.items():
        median = statistics.median(values)
        print(f"{amp:>4}: {median:.4f} s/step, {args.batch / median:.1f} images/s "
              f"(rounds: {', '.join(f'{v:.3f}' for v in values)})")
    print(f"bf16 / float32 time: {statistics.median(times['bf16']) / statistics.median(times['off']):.3f}")


if __name__ == "__main__":
    main()
