"""A real-time sprite demo: prompts become sprites while the game keeps its frame rate.

A sprite pack (`train --rgba`: premultiplied RGBA) is drawn over the game's own backdrop with
premultiplied-alpha blending. Keys 1-6 switch the prompt (the sprite cross-fades through a spherical blend of the
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


def to_surface(pygame, image: np.ndarray):  # noqa: ANN001, ANN201 - pygame module and Surface
    """uint8 [H, W, 3] RGB or [H, W, 4] premultiplied RGBA -> a pygame Surface (with per-pixel alpha for RGBA)."""
    h, w = image.shape[:2]
    if image.shape[2] == 4:
        return pygame.image.frombuffer(np.ascontiguousarray(image).tobytes(), (w, h), "RGBA")
    return pygame.surfarray.make_surface(image.swapaxes(0, 1))


def make_backdrop(pygame, width: int, height: int):  # noqa: ANN001, ANN201
    """The game's own background: a dusk gradient with a grass strip, so a sprite's transparency shows."""
    y = np.linspace(0.0, 1.0, height)[None, :, None]
    sky = (np.array([40, 40, 90]) * (1 - y) + np.array([230, 150, 120]) * y).repeat(width, 0)
    sky[:, int(height * 0.8):] = (60, 140, 60)
    return pygame.surfarray.make_surface(sky.astype(np.uint8))


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
    backdrop = make_backdrop(pygame, side * 2, side)
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
                sprite = pygame.transform.scale(to_surface(pygame, latest[0]), (side, side))
            screen.blit(backdrop, (0, 0))
            if sprite is not None:  # a sprite pack's premultiplied RGBA composites over the backdrop
                screen.blit(sprite, (side // 2, 0), special_flags=pygame.BLEND_PREMULTIPLIED if gen.channels == 4 else 0)
            pygame.display.flip()
            frame_ms.append((time.perf_counter() - t0) * 1e3)
            frame += 1
            clock.tick(90)
        stats = {
            "frames": frame, "backend": gen.choice.backend, "precision": gen.choice.precision,
            "frame_ms_p50": float(np.percentile(frame_ms, 50)), "frame_ms_p99": float(np.percentile(frame_ms, 99)),
            "submit_ms_max": float(max(submit_ms)), "submit_ms_p99": float(np.percentile(submit_ms, 99)), "images_generated": len(worker.latencies),
            "requests_dropped": worker.dropped, "channels": gen.channels,
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
