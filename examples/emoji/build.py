"""Build the emoji training set from the npm packages `emoji-datasource-google` and `emoji-datasource-twitter`.

    mkdir -p data/npm && npm pack emoji-datasource-google@16.0.0 emoji-datasource-twitter@16.0.0 --pack-destination data/npm
    python examples/emoji/build.py --tarballs data/npm --out data/emoji   # 74 + 62 MB of npm tarballs -> 3,812 images, 64 px RGBA

Every base emoji (no skin-tone variants) of both vendors, one 64 px RGBA PNG each (the packages' `img/*/64/`),
captioned from emoji-datasource's metadata as "<name>, <subcategory>, <category>" in lower case
("grinning face, face smiling, smileys & emotion"): the vendor is left out of the caption, so each caption has
two images (Google's and Twitter's drawing) and the data's own diversity for one caption can be measured.
Licences (emoji-datasource README): Google's images (Noto Emoji) Apache-2.0, Twitter's (Twemoji) CC-BY-4.0;
the metadata (emoji.json) MIT, Copyright (c) 2013 Cal Henderson. They are written per row into the dataset
(`dataset_info.json` counts them) and from there into model cards. The images are not in this repository.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tarfile
import tempfile
from pathlib import Path

VENDORS = {
    "google": ("emoji-datasource-google-16.0.0.tgz",
               "Apache-2.0 (Google Noto Emoji images, via npm emoji-datasource-google 16.0.0)"),
    "twitter": ("emoji-datasource-twitter-16.0.0.tgz",
                "CC-BY-4.0 (Twemoji graphics by Twitter, Inc and other contributors, via npm "
                "emoji-datasource-twitter 16.0.0)"),
}


def caption(entry: dict) -> str:
    sub = entry.get("subcategory", "").replace("-", " ")
    return f"{entry['name']}, {sub}, {entry['category']}".lower()


def extract(tarballs: Path, work: Path) -> list[dict]:
    rows: list[dict] = []
    for vendor, (tgz, licence) in VENDORS.items():
        path = tarballs / tgz
        if not path.is_file():
            sys.exit(f"error: {path} not found: run `npm pack emoji-datasource-{vendor}@16.0.0` in {tarballs}")
        with tarfile.open(path) as tar:
            meta = json.load(tar.extractfile("package/emoji.json"))  # type: ignore[arg-type]
            wanted = {f"package/img/{vendor}/64/{e['image']}": e for e in meta
                      if e.get(f"has_img_{vendor}") and e.get("category") != "Component"}
            for member in tar.getmembers():
                entry = wanted.get(member.name)
                if entry is None or not member.isfile():
                    continue
                target = work / vendor / entry["image"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
                rows.append({"file": f"{vendor}/{entry['image']}", "caption": caption(entry), "licence": licence,
                             "order": entry.get("sort_order", 0)})
    rows.sort(key=lambda r: (r["order"], r["file"]))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tarballs", type=Path, default=Path("."), help="folder holding the two npm tarballs")
    p.add_argument("--out", required=True, help="imagefolder to write (through `edge-t2i data import`)")
    p.add_argument("--force", action="store_true", help="replace --out even if this tool did not write it")
    a = p.parse_args()
    from edge_t2i.data.importer import import_images

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = extract(a.tarballs, work)
        with open(work / "captions.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, ["file", "caption", "licence"], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        out = import_images(work, a.out, str(work / "captions.csv"), 64, name="emoji (Google + Twitter, 16.0.0)",
                            force=a.force)
    print(f"wrote {len(rows)} images to {out}; preview: {out / 'preview.png'}")


if __name__ == "__main__":
    main()
