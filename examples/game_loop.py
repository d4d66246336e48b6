"""A real-time sprite demo: prompts become sprites while the game keeps its frame rate.

Keys 1-6 switch the prompt (the sprite cross-fades through a spherical blend of the
two prompt embeddings), SPACE re-rolls the seed, ESC quits. Generation runs on
the AsyncPipeline's worker thread: the frame loop only submits requests and
shows the newest finished image, so no frame waits for the generator.

    python examples/game_loop.py build/shapes64            # a window
    SDL_VIDEODRIVER=dummy python examples/game_loop.py build/shapes64 --frames 300 --json stats.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import edge_t2i
from edge_t2i.runtime import AsyncPipeline

FRAME_BUDGET_S = 1.0 / 90.0  # a 90 Hz headset: 11.1 ms for everything in a frame
PROMPTS = [
    "a large red circle in the center", "a large blue star in the center", "a large green square in the center",
    "a large yellow triangle in the center", "a large cyan hexagon in the center", "a large pink cross in the center",
]
BLEND_FRAMES = 45  # half a second at 90 Hz


def run(pack: str, frames: int | None, scale: int, backend: str) -> dict:
    import pygame

    # Python hands the GIL between threads every 5 ms by default: a frame could wait that long
    # for the worker's Python code. 1 ms keeps the game thread responsive.
    sys.setswitchinterval(0.001)
    # Leave a core to the game thread: the generator's thread pool takes the others.
    gen = edge_t2i.load(pack, backend=backend, threads=max(1, (os.cpu_count() or 2) - 1))
    # an unconditional pack (noise alone) has no bank: its sprite changes with the seed only (SPACE)
    prompts = ([p for p in PROMPTS if p in gen.bank] or gen.bank.texts[:6]) if gen.conditional else [""]
    pygame.init()
    side = gen.resolution * scale
    screen = pygame.display.set_mode((side * 2, side))
    pygame.display.set_caption(f"edge-t2i: {gen.choice.backend} {gen.choice.precision}")
    clock = pygame.time.Clock()
    current, target, blend_t, seed = 0, 0, 1.0, 0
    sprite = None
    submit_ms, frame_ms = [], []
    frame = 0
    with AsyncPipeline(gen, latest_wins=True) as worker:
        running = True
        while running and (frames is None or frame < frames):
            t0 = time.perf_counter()
            for event in pygame.event.get():
                if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE):
                    running = False
                elif event.type == pygame.KEYDOWN and pygame.K_1 <= event.key < pygame.K_1 + len(prompts):
                    current, target, blend_t = target, event.key - pygame.K_1, 0.0
                elif event.type == pygame.KEYDOWN and event.key == pygame.K_SPACE:
                    seed += 1
            if frames is not None and frame % 60 == 0:  # headless demo: switch prompts by itself
                current, target, blend_t = target, (target + 1) % len(prompts), 0.0
            if blend_t < 1.0:
                blend_t = min(1.0, blend_t + 1.0 / BLEND_FRAMES)
            s0 = time.perf_counter()
            if gen.conditional:
                emb = gen.bank.blend(prompts[current], prompts[target], blend_t)
                worker.submit(emb[None, :], seeds=[seed])  # never blocks; stale requests are dropped
            else:
                worker.submit(None, seeds=[seed + frame // 60 if frames is not None else seed])
            submit_ms.append((time.perf_counter() - s0) * 1e3)
            latest = worker.latest()
            if latest is not None:
                sprite = pygame.transform.scale(pygame.surfarray.make_surface(latest[0].swapaxes(0, 1)), (side, side))
            screen.fill((30, 30, 40))
            if sprite is not None:
                screen.blit(sprite, (side // 2, 0))
            pygame.display.flip()
            frame_ms.append((time.perf_counter() - t0) * 1e3)
            frame += 1
            clock.tick(90)
        stats = {
            "frames": frame, "backend": gen.choice.backend, "precision": gen.choice.precision,
            "frame_ms_p50": float(np.percentile(frame_ms, 50)), "frame_ms_p99": float(np.percentile(frame_ms, 99)),
            "submit_ms_max": float(max(submit_ms)), "submit_ms_p99": float(np.percentile(submit_ms, 99)), "images_generated": len(worker.latencies),
            "requests_dropped": worker.dropped,
            "generation_latency_ms_p50": float(np.percentile(worker.latencies, 50) * 1e3) if worker.latencies else None,
            "frames_over_budget": int(sum(ms > FRAME_BUDGET_S * 1e3 for ms in frame_ms)),
        }
    pygame.quit()
    gen.close()
    return stats


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pack")
    p.add_argument("--frames", type=int, default=None, help="stop after N frames (default: run until ESC)")
    p.add_argument("--scale", type=int, default=4, help="sprite magnification (default 4)")
    p.add_argument("--backend", default="auto")
    p.add_argument("--json", help="write frame statistics here")
    a = p.parse_args()
    stats = run(a.pack, a.frames, a.scale, a.backend)
    print(json.dumps(stats, indent=2))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(stats, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
