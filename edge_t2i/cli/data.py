"""`edge-t2i data shapes | import | preview`: make, import and look at captioned datasets."""

from __future__ import annotations

import argparse

from edge_t2i.cli.common import int_in


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="make or inspect datasets").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("shapes", help="render the captioned shapes dataset as an imagefolder")
    p.add_argument("--out", required=True,
                   help="output folder: new, empty, or a dataset this tool wrote (replaced atomically)")
    p.add_argument("--force", action="store_true", help="replace --out even if this tool did not write it")
    p.add_argument("--count", type=int_in(1, 10_000_000), default=1000, help="number of images (default 1000)")
    p.add_argument("--seed", type=int_in(0, 2**62), default=0, help="the dataset is a function of the seed (default 0)")
    p.add_argument("--split", default="train", choices=("train", "val", "test"),
                   help="train never holds the held-out (shape, color) pairs")
    p.add_argument("--resolution", type=int_in(16, 1024), default=64, help="image side in pixels (default 64)")
    p.add_argument("--novel-captions", action="store_true",
                   help="phrase captions with synonyms and templates never used in training")
    p.set_defaults(func=cmd_shapes)
    p = data.add_parser("preview", help="save a grid of the first images of an imagefolder")
    p.add_argument("dir", help="imagefolder (metadata.jsonl + images)")
    p.add_argument("--out", default="preview.png", help="PNG to write (default preview.png)")
    p.add_argument("--count", type=int_in(1, 1024), default=32, help="images in the grid (default 32)")
    p.set_defaults(func=cmd_preview)
    p = data.add_parser(
        "import", help="turn a folder of your own captioned images into a training imagefolder",
        description="Reads captions from --captions (CSV with columns file,caption[,licence], or JSON Lines with "
                    "those keys) or from SOURCE/metadata.jsonl (file_name, text), resizes every image to "
                    "--resolution (area filter on premultiplied alpha; transparency is kept as RGBA PNG) and "
                    "writes --out with metadata.jsonl, dataset_info.json (licences with counts) and preview.png. "
                    "Train on it with `edge-t2i train --data OUT` (the general recipe is chosen automatically).")
    p.add_argument("source", help="folder of images (paths in the captions are relative to it)")
    p.add_argument("--out", required=True, help="new imagefolder (or one `data import` wrote: replaced atomically)")
    p.add_argument("--captions", help="CSV or JSONL file of file,caption[,licence] (default: SOURCE/metadata.jsonl)")
    p.add_argument("--resolution", type=int_in(16, 1024), default=64, help="image side in pixels (default 64)")
    p.add_argument("--licence", help="licence of rows that name none (recorded in dataset_info.json and model cards)")
    p.add_argument("--name", help="dataset name for dataset_info.json (default: the source folder's name)")
    p.add_argument("--force", action="store_true", help="replace --out even if this tool did not write it")
    p.set_defaults(func=cmd_import)


def cmd_shapes(a: argparse.Namespace) -> None:
    from edge_t2i.data import make_shapes_dataset, read_imagefolder
    from edge_t2i.data.imagefolder import save_preview

    out = make_shapes_dataset(a.out, a.count, seed=a.seed, split=a.split, resolution=a.resolution,
                              novel_captions=a.novel_captions, force=a.force)
    folder = read_imagefolder(out)
    preview = save_preview(folder, out / "preview.png")
    print(f"wrote {len(folder)} images ({a.split}, {a.resolution} px) to {out}; preview: {preview}")
    for row in folder.records[:3]:
        print(f"  {row['file_name']}: {row['text']}")


def cmd_preview(a: argparse.Namespace) -> None:
    from edge_t2i import _io
    from edge_t2i.data import read_imagefolder
    from edge_t2i.data.imagefolder import save_preview

    _io.claim_output_file(a.out, inputs=(a.dir,), what="--out")
    print(save_preview(read_imagefolder(a.dir), a.out, a.count))


def cmd_import(a: argparse.Namespace) -> None:
    from edge_t2i.data import read_imagefolder
    from edge_t2i.data.importer import dataset_info, import_images

    out = import_images(a.source, a.out, a.captions, a.resolution, a.licence, a.name, a.force)
    info = dataset_info(out)
    kind = "RGBA (alpha kept)" if info.get("alpha") else "RGB"
    print(f"wrote {info['count']} images ({a.resolution} px, {kind}) to {out}; preview: {out / 'preview.png'}")
    for lic in info["licences"]:
        print(f"  {lic['images']} images: {lic['licence']}")
    for row in read_imagefolder(out).records[:3]:
        print(f"  {row['file_name']}: {row['text']}")
