"""The manifest schema, field by field: what parses, what each bound admits exactly, what is refused."""

import copy
import hashlib
import json
import re
from pathlib import Path

import pytest

from edge_t2i.errors import PackError
from edge_t2i.runtime.manifest import (
    MANIFEST,
    EngineEntry,
    TensorSpec,
    is_pack,
    parse_manifest,
    read_manifest,
    safe_name,
)
from edge_t2i.runtime.noise import LEGACY, PORTABLE
from edge_t2i.runtime.packfile import read_verified

ROOT = Path("/pack")
ENGINE = "generator.int8.trt10.0.sm89.plan"
BANK = "bank.safetensors"
FILES = ["generator.fp32.onnx", "generator.int8.onnx", BANK, ENGINE, "text_encoder.int8.onnx",
         "tokenizer.json", "calibration.npz"]


def digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def valid_manifest() -> dict:
    """A manifest like the ones `convert` writes (tests/runtime/test_manifest.py::test_builder_matches_a_real_pack)."""
    return {
        "schema_version": 3, "format": "edge-t2i pack",
        "model": {"resolution": 32, "nz": 100, "cond_dim": 384, "ngf": 8},
        "io": {"inputs": [{"name": "z", "shape": ["batch", 100], "dtype": "float32"},
                          {"name": "embedding", "shape": ["batch", 384], "dtype": "float32"}],
               "outputs": [{"name": "image", "shape": ["batch", 3, 32, 32], "dtype": "float32"}]},
        "models": {"fp32": "generator.fp32.onnx", "int8": "generator.int8.onnx"},
        "engines": [{"file": ENGINE, "precision": "int8", "tensorrt_version": "10.0", "compute_capability": "8.9",
                     "max_batch": 8}],
        "bank": BANK,
        "encoder": {"model": "text_encoder.int8.onnx", "tokenizer": "tokenizer.json"},
        "noise": {"name": PORTABLE, "spec": "docs/pack-spec.md#noise"},
        "files": {n: {"sha256": digest(n), "bytes": 10} for n in FILES},
        "gate": {"passed": True, "psnr_db": 41.5},
    }


def parse(raw: object):
    return parse_manifest(ROOT, raw)


def refused(raw: object, msg: str) -> None:
    with pytest.raises(PackError, match=msg):
        parse(raw)


def changed(change) -> dict:
    m = valid_manifest()
    change(m)
    return m


# ---- a valid manifest -----------------------------------------------------------------------------
def test_a_valid_manifest_parses_into_every_field():
    raw = valid_manifest()
    m = parse(raw)
    assert m.root == ROOT and m.raw is raw
    assert (m.resolution, m.nz, m.embedding_dim) == (32, 100, 384)
    assert m.inputs == (TensorSpec("z", ("batch", 100), "float32"), TensorSpec("embedding", ("batch", 384), "float32"))
    assert m.outputs == (TensorSpec("image", ("batch", 3, 32, 32), "float32"),)
    assert m.models == {"fp32": "generator.fp32.onnx", "int8": "generator.int8.onnx"}
    assert m.engines == (EngineEntry(ENGINE, "int8", "10.0", "8.9", 8),)
    assert m.bank == BANK and m.noise == PORTABLE
    assert m.encoder == {"model": "text_encoder.int8.onnx", "tokenizer": "tokenizer.json"}
    assert m.files == {n: digest(n) for n in FILES}
    assert m.path(BANK) == ROOT / BANK
    assert m.gate == {"passed": True, "psnr_db": 41.5}


def test_optional_parts_may_be_absent():
    def strip(m):
        for key in ("engines", "encoder", "bank", "gate"):
            del m[key]
    m = parse(changed(strip))
    assert m.engines == () and m.encoder is None and m.bank is None and m.gate == {}
    m = parse(changed(lambda m: m.update(engines=None, encoder=None, bank=None, gate=None)))
    assert m.engines == () and m.encoder is None and m.bank is None and m.gate == {}
    one = parse(changed(lambda m: m.update(models={"fp16": "generator.fp32.onnx"})))
    assert one.models == {"fp16": "generator.fp32.onnx"}


def test_builder_matches_a_real_pack(pack_dir):
    """The hand-made manifest has the shape of one `convert` writes, and the real one parses."""
    real = json.loads((pack_dir / MANIFEST).read_text())
    mine = valid_manifest()
    for key in ("schema_version", "format", "model", "io", "models", "bank", "files", "noise"):
        assert key in real, key
    for key in ("io", "schema_version", "format", "noise", "bank"):
        assert real[key] == mine[key], key
    assert set(real["model"]) >= {"resolution", "nz", "cond_dim"}
    m = read_manifest(pack_dir)
    assert m.files == {n: e["sha256"] for n, e in real["files"].items()}
    for name in [*m.models.values(), m.bank]:
        assert read_verified(m, name) == (pack_dir / name).read_bytes()


# ---- file names ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a", "generator.int8.onnx", "A-b_c.9", "x" * 201, "9lives", "a.b.c"])
def test_plain_names_are_accepted(name):
    assert safe_name(name, "where") == name


@pytest.mark.parametrize("name", ["", "x" * 202, ".hidden", "-rf", "_x", "a/b", "a\\b", "../x", "a..b", "..",
                                  "/etc/passwd", "a b", "é.onnx", "a:b", None, 5, b"bank.npz", ["a"]])
def test_other_names_are_refused(name):
    with pytest.raises(PackError, match=r"manifest where: .* is not a plain file name inside the pack"):
        safe_name(name, "where")


# ---- integers: the same bounds for every declared dimension --------------------------------------------
@pytest.mark.parametrize("field", ["resolution", "nz", "cond_dim"])
@pytest.mark.parametrize("value", [1, 4096])
def test_model_dimensions_admit_1_to_4096(field, value):
    from edge_t2i.runtime.manifest import standard_io

    def change(m):
        m["model"][field] = value
        inputs, outputs = standard_io(m["model"]["resolution"], m["model"]["nz"], m["model"]["cond_dim"])
        m["io"] = {"inputs": [t.as_dict() for t in inputs], "outputs": [t.as_dict() for t in outputs]}
    m = parse(changed(change))
    assert getattr(m, {"cond_dim": "embedding_dim"}.get(field, field)) == value
    refused(changed(lambda m: m["model"].update({field: value})), "manifest io: the shapes must be")  # io disagrees


@pytest.mark.parametrize("field", ["resolution", "nz", "cond_dim"])
@pytest.mark.parametrize("value", [0, -1, 4097, 10**30, True, 3.0, "32", None, [32]])
def test_model_dimensions_outside_are_refused(field, value):
    refused(changed(lambda m: m["model"].update({field: value})),
            rf"manifest model\.{field}: expected an integer in \[1, 4096\], got {re.escape(repr(value))}$")


def test_model_dimension_missing():
    refused(changed(lambda m: m["model"].pop("nz")), r"model\.nz: expected an integer")


@pytest.mark.parametrize("shape,ok", [
    (["batch", 4096], True), ([1], True), (["batch"] * 8, True), ([1] * 8, True),
    ([], False), ([1] * 9, False), (["batch", 0], False), (["batch", 4097], False), (["batch", "lots"], False),
    (["batch", True], False), (["batch", 2.0], False), ("batch", False), (None, False), ({"0": 1}, False),
])
def test_tensor_shapes(shape, ok):
    """Well-formed shapes parse, then must equal what `model` says (a crafted [batch] z once reached the backend)."""
    m = changed(lambda m: m["io"]["inputs"][0].update(shape=shape))
    refused(m, r"manifest io: the shapes must be z \[batch, 100\]" if ok else r"manifest io\.inputs\[0\]\.shape")


@pytest.mark.parametrize("spec,msg", [
    ("z", r"io\.inputs\[0\]: expected an object"),
    ({"shape": ["batch", 100], "dtype": "float32"}, r"io\.inputs\[0\]\.name: expected a tensor name"),
    ({"name": "", "shape": ["batch", 100], "dtype": "float32"}, r"\.name"),
    ({"name": 5, "shape": ["batch", 100], "dtype": "float32"}, r"\.name"),
    ({"name": "z" * 129, "shape": ["batch", 100], "dtype": "float32"}, r"\.name"),
    ({"name": "z", "shape": ["batch", 100]}, r"io\.inputs\[0\]\.dtype: expected float32 or float16, got None"),
    ({"name": "z", "shape": ["batch", 100], "dtype": "int8"}, r"\.dtype"),
    ({"name": "z", "shape": ["batch", 100], "dtype": "float64"}, r"\.dtype"),
])
def test_tensor_specs_are_checked(spec, msg):
    refused(changed(lambda m: m["io"]["inputs"].__setitem__(0, spec)), msg)


def test_tensor_spec_limits_and_dtypes():
    assert TensorSpec.parse({"name": "n" * 128, "shape": [2], "dtype": "float16"}, "w") == TensorSpec("n" * 128, (2,),
                                                                                                       "float16")
    assert TensorSpec.parse({"name": "x", "shape": ["batch", 3], "dtype": "float32"}, "w").dtype == "float32"


@pytest.mark.parametrize("change", [
    lambda m: m["io"].update(inputs=list(reversed(m["io"]["inputs"]))),
    lambda m: m["io"]["inputs"].pop(),
    lambda m: m["io"]["inputs"].append({"name": "extra", "shape": [1], "dtype": "float32"}),
    lambda m: m["io"]["outputs"][0].update(name="images"),
    lambda m: m["io"].update(outputs=[]),
])
def test_io_names_must_be_z_embedding_and_image(change):
    refused(changed(change), r"manifest io: expected inputs \[z, embedding\] and output \[image\]")


@pytest.mark.parametrize("change", [lambda m: m["io"].pop("inputs"), lambda m: m["io"].update(inputs=None),
                                    lambda m: m["io"].update(outputs=5)])
def test_io_tensor_lists_must_be_lists(change):
    refused(changed(change), r"manifest io\.(inputs|outputs): expected a list of tensors")


@pytest.mark.parametrize("io", [None, [], "io"])
def test_io_must_be_an_object(io):
    refused(changed(lambda m: m.update(io=io)), "manifest io: expected an object with inputs and outputs")


# ---- schema version ----------------------------------------------------------------------------------
@pytest.mark.parametrize("version,msg", [
    (4, "pack schema version 4 is newer than this runtime understands \\(3\\): upgrade edge-t2i"),
    (10**20, "is newer"),
    (0, "pack schema version 0 is invalid"),
    (-3, "pack schema version -3 is invalid"),
    (True, "no integer schema_version"), ("1", "no integer schema_version"), (1.0, "no integer schema_version"),
    (None, "no integer schema_version"),
])
def test_schema_version(version, msg):
    refused(changed(lambda m: m.update(schema_version=version)), msg)


def test_schema_1_packs_still_read_and_assume_numpys_noise():
    def schema_1(m):
        m.update(schema_version=1)
        del m["noise"]
    m = parse(changed(schema_1))
    assert m.noise == LEGACY and m.bank == BANK


@pytest.mark.parametrize("noise,kind", [({"name": PORTABLE}, PORTABLE), ({"name": LEGACY, "spec": "x"}, LEGACY),
                                        (None, LEGACY)])
def test_noise_generator(noise, kind):
    assert parse(changed(lambda m: m.update(noise=noise))).noise == kind


@pytest.mark.parametrize("noise", [{"name": "mt19937"}, {"name": None}, {}, PORTABLE, [PORTABLE], 1,
                                   {"name": [PORTABLE]}])
def test_unknown_noise_generators_are_refused(noise):
    refused(changed(lambda m: m.update(noise=noise)),
            r"manifest noise: .* is not a generator this runtime knows \(splitmix64-polar-v1, numpy-pcg64\): upgrade")


def test_schema_version_missing():
    refused(changed(lambda m: m.pop("schema_version")), "no integer schema_version")


@pytest.mark.parametrize("raw", [None, [], "manifest", 1, [valid_manifest()]])
def test_manifest_must_be_an_object(raw):
    refused(raw, "manifest must be a JSON object")


@pytest.mark.parametrize("model", [None, [], "m", 32])
def test_model_must_be_an_object(model):
    refused(changed(lambda m: m.update(model=model)), "manifest model: expected an object")


# ---- files and their digests -------------------------------------------------------------------------
@pytest.mark.parametrize("files", [None, {}, [], "all good"])
def test_files_must_be_a_non_empty_object(files):
    refused(changed(lambda m: m.update(files=files)), r"manifest files: expected an object of file name -> \{sha256\}")


@pytest.mark.parametrize("entry", [
    {"sha256": "A" * 64}, {"sha256": "a" * 63}, {"sha256": "a" * 65}, {"sha256": "g" * 64}, {"sha256": None},
    {"sha256": int("1" * 64)}, {"sha1": "a" * 64}, "a" * 64, None, {"sha256": "a" * 64 + "\n"},
])
def test_bad_digests_are_refused(entry):
    refused(changed(lambda m: m["files"].update({BANK: entry})), r"manifest files\['bank.safetensors'\]: expected a sha256")


def test_file_names_in_files_must_be_plain():
    refused(changed(lambda m: m["files"].update({"../x": {"sha256": "0" * 64}})), r"manifest files: '\.\./x'")


@pytest.mark.parametrize("name", ["generator.fp32.onnx", "generator.int8.onnx", ENGINE, BANK,
                                  "text_encoder.int8.onnx", "tokenizer.json"])
def test_every_referenced_file_needs_a_digest(name):
    refused(changed(lambda m: m["files"].pop(name)), f"manifest references {name} but lists no sha256 for it")


def test_unreferenced_files_are_allowed():
    m = parse(changed(lambda m: m["files"].update({"report.md": {"sha256": "f" * 64, "bytes": 3}})))
    assert m.files["report.md"] == "f" * 64 and m.files["calibration.npz"] == digest("calibration.npz")


# ---- models, bank, encoder, engines ---------------------------------------------------------------------
@pytest.mark.parametrize("models,msg", [
    ({}, "manifest models: expected an object of precision -> ONNX file"),
    (None, "manifest models: expected an object"), (["generator.fp32.onnx"], "manifest models: expected an object"),
    ({"int4": "generator.int8.onnx"}, "manifest models: unknown precision 'int4'"),
    ({"int8": "../generator.int8.onnx"}, "manifest models.int8: '../generator.int8.onnx' is not a plain file name"),
    ({"int8": None}, r"manifest models\.int8"),
])
def test_models(models, msg):
    refused(changed(lambda m: m.update(models=models)), msg)


@pytest.mark.parametrize("bank", ["", "../bank.safetensors", 5, [BANK]])
def test_bank_name(bank):
    refused(changed(lambda m: m.update(bank=bank)), "manifest bank: .* is not a plain file name")


@pytest.mark.parametrize("encoder,msg", [
    ("text_encoder.int8.onnx", "manifest encoder: expected an object"), ([], "manifest encoder: expected an object"),
    ({"model": "text_encoder.int8.onnx"}, "manifest encoder.tokenizer: None"),
    ({"tokenizer": "tokenizer.json"}, "manifest encoder.model: None"),
    ({"model": "/abs.onnx", "tokenizer": "tokenizer.json"}, "manifest encoder.model: '/abs.onnx'"),
    ({"model": "text_encoder.int8.onnx", "tokenizer": "tokenizer.json", "reader": "../r.onnx"},
     "manifest encoder.reader: '../r.onnx'"),
    ({"model": "text_encoder.int8.onnx", "tokenizer": "tokenizer.json", "reader": "reader.onnx"},
     "manifest references reader.onnx but lists no sha256"),
])
def test_encoder(encoder, msg):
    refused(changed(lambda m: m.update(encoder=encoder)), msg)


@pytest.mark.parametrize("engines,msg", [
    ("all", "manifest engines: expected a list"), ({}, "manifest engines: expected a list"),
    (["x"], r"manifest engines\[0\]: expected an object"),
    ([{"file": ENGINE, "precision": "int4", "max_batch": 8}], r"engines\[0\]\.precision: expected one of"),
    ([{"file": ENGINE, "max_batch": 8}], r"engines\[0\]\.precision"),
    ([{"file": "../e.plan", "precision": "int8", "max_batch": 8}], r"manifest engines\[0\]\.file: '\.\./e\.plan'"),
    ([{"file": ENGINE, "precision": "int8"}], r"manifest engines\[0\]\.max_batch: expected an integer in \[1, 4096\]"),
    ([{"file": ENGINE, "precision": "int8", "max_batch": 0}], r"engines\[0\]\.max_batch"),
    ([{"file": ENGINE, "precision": "int8", "max_batch": 4097}], r"engines\[0\]\.max_batch"),
    ([{"file": ENGINE, "precision": "int8", "max_batch": 8}, None], r"manifest engines\[1\]: expected an object"),
])
def test_engines(engines, msg):
    refused(changed(lambda m: m.update(engines=engines)), msg)


def test_engine_entries_keep_their_fields():
    def two(m):
        m["engines"] = [{"file": ENGINE, "precision": "fp16", "tensorrt_version": 10, "compute_capability": 8.9,
                         "max_batch": 4096},
                        {"file": "generator.fp32.onnx", "precision": "fp32", "max_batch": 1}]
    m = parse(changed(two))
    assert m.engines == (EngineEntry(ENGINE, "fp16", "10", "8.9", 4096), EngineEntry("generator.fp32.onnx", "fp32", "", "", 1))
    assert parse(changed(lambda m: m.update(engines=[]))).engines == ()


# ---- reading from disk ----------------------------------------------------------------------------------
def write_pack(folder: Path, files: dict[str, bytes]) -> dict:
    folder.mkdir(exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    m = valid_manifest()
    m.update(engines=[], encoder=None)
    m["files"] = {n: {"sha256": hashlib.sha256(d).hexdigest(), "bytes": len(d)} for n, d in files.items()}
    (folder / MANIFEST).write_text(json.dumps(m))
    return m


PACK_FILES = {"generator.fp32.onnx": b"fp32", "generator.int8.onnx": b"int8", BANK: b"bank"}


def test_read_and_verify(tmp_path):
    raw = write_pack(tmp_path, PACK_FILES)
    m = read_manifest(tmp_path)
    assert m.root == tmp_path and m.raw == raw and m.bank == BANK and is_pack(tmp_path)
    assert read_verified(m, BANK) == b"bank"
    (tmp_path / BANK).write_bytes(b"banc")
    with pytest.raises(PackError, match="pack file bank.safetensors does not match its sha256"):
        read_verified(m, BANK)
    (tmp_path / BANK).write_bytes(b"bank!")
    with pytest.raises(PackError, match="pack file bank.safetensors is 5 bytes, the manifest declares 4"):
        read_verified(m, BANK)
    (tmp_path / BANK).unlink()
    with pytest.raises(PackError, match=f"pack file bank.safetensors is missing \\(not found at {tmp_path}"):
        read_verified(m, BANK)
    (tmp_path / BANK).mkdir()
    with pytest.raises(PackError, match="is not a regular file"):
        read_verified(m, BANK)


def test_read_missing_or_not_a_pack(tmp_path):
    with pytest.raises(PackError, match="not found \\(expected a folder with manifest.json\\)"):
        read_manifest(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(PackError, match="file.* a pack is a folder with manifest.json"):
        read_manifest(tmp_path / "file")
    with pytest.raises(PackError, match="a pack is a folder path, got int"):
        read_manifest(5)
    with pytest.raises(PackError, match="is not a pack: manifest.json not found"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST).mkdir()
    with pytest.raises(PackError, match="manifest.json is not a regular file"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("content", [b"{oops", b"\xff\xfe{}", b"", b"[1, 2"])
def test_read_invalid_json(tmp_path, content):
    (tmp_path / MANIFEST).write_bytes(content)
    with pytest.raises(PackError, match="is not valid JSON"):
        read_manifest(tmp_path)


def test_manifest_size_limit_is_exactly_4_mib(tmp_path):
    write_pack(tmp_path, PACK_FILES)
    text = (tmp_path / MANIFEST).read_text()
    limit = 4 * 1024 * 1024
    (tmp_path / MANIFEST).write_text(text + " " * (limit - len(text)))
    assert read_manifest(tmp_path).bank == BANK and is_pack(tmp_path)
    (tmp_path / MANIFEST).write_text(text + " " * (limit + 1 - len(text)))
    with pytest.raises(PackError, match=f"is {limit + 1} bytes, more than {limit}"):
        read_manifest(tmp_path)
    assert is_pack(tmp_path) is False


@pytest.mark.parametrize("content", [json.dumps({"format": "edge-t2i packs"}), json.dumps(["edge-t2i pack"]),
                                     json.dumps({"schema_version": 2}), "{oops", "\udcff", ""])
def test_is_pack_only_for_this_tools_manifests(tmp_path, content):
    """What `convert --force` may replace: a folder whose manifest.json says it is an edge-t2i pack."""
    assert is_pack(tmp_path) is False  # no manifest at all
    (tmp_path / MANIFEST).write_text(content, errors="surrogateescape")
    assert is_pack(tmp_path) is False
    (tmp_path / MANIFEST).write_text(json.dumps({"format": "edge-t2i pack"}))
    assert is_pack(tmp_path)


def test_deeply_nested_json_is_a_pack_error(tmp_path):
    (tmp_path / MANIFEST).write_text("[" * 100_000)
    with pytest.raises(PackError):
        read_manifest(tmp_path)


def test_a_name_with_a_trailing_newline_is_refused():
    with pytest.raises(PackError):
        safe_name("bank.npz\n", "bank")


def test_parsing_does_not_modify_the_raw_manifest():
    raw = valid_manifest()
    before = copy.deepcopy(raw)
    parse(raw)
    assert raw == before


# ---- one typed Manifest: written and read by the same code ----------------------------------------------
def test_the_manifest_round_trips_through_its_writer_and_reader(tmp_path):
    from edge_t2i.runtime.manifest import Int8Coverage, write_manifest

    raw = changed(lambda m: m.update(int8_coverage={"macs_fraction": 0.97, "layers_int8": 4, "layers": 5,
                                                    "macs_int8": 97, "macs": 100},
                                     calibration={"method": "percentile"}, created="2026-12-06T00:00:00Z"))
    m = parse(raw)
    assert m.coverage == Int8Coverage(0.97, 4, 5, 97, 100) and m.records["calibration"] == {"method": "percentile"}
    again = parse(m.to_dict())
    assert again.to_dict() == m.to_dict()
    for field in ("resolution", "nz", "embedding_dim", "inputs", "outputs", "models", "engines", "bank", "encoder",
                  "files", "noise", "cpu_variants", "conditioning", "file_bytes", "coverage", "model", "records"):
        assert getattr(again, field) == getattr(m, field), field
    write_manifest(tmp_path, m)
    assert read_manifest(tmp_path).to_dict() == m.to_dict()


def unconditional() -> dict:
    def change(m):
        m["conditioning"] = "none"
        m["model"].pop("cond_dim")
        m["io"]["inputs"] = m["io"]["inputs"][:1]
        m.update(bank=None, encoder=None)
    return changed(change)


def test_an_unconditional_pack_has_z_alone():
    m = parse(unconditional())
    assert m.conditioning == "none" and not m.conditional and m.embedding_dim == 0
    assert [t.name for t in m.inputs] == ["z"]
    assert parse(m.to_dict()).to_dict() == m.to_dict()


@pytest.mark.parametrize("change,msg", [
    (lambda m: m.update(conditioning="class"), "conditioning: expected one of sentence, none"),
    (lambda m: m.update(conditioning=["none"]), "conditioning: expected one of"),
    (lambda m: m["io"]["inputs"].append({"name": "embedding", "shape": ["batch", 4], "dtype": "float32"}),
     r"expected inputs \[z\] and output \[image\]"),
    (lambda m: m.update(bank=BANK), "has no bank or text encoder"),
    (lambda m: m.update(int8_coverage={"macs_fraction": 2}), "macs_fraction: expected a number in"),
    (lambda m: m.update(int8_coverage=[]), "int8_coverage: expected an object"),
    (lambda m: m.update(int8_coverage={"macs_fraction": 0.5, "layers_int8": 9, "layers": 1, "macs_int8": 1,
                                       "macs": 2}), "the counts do not add up"),
    (lambda m: m.update(int8_coverage={"macs_fraction": 0.9, "layers_int8": 1, "layers": 1, "macs_int8": 1,
                                       "macs": 2}), "the counts do not add up"),
    (lambda m: m["io"]["inputs"][0].update(shape=["batch"]), "the shapes must be z"),
    (lambda m: m.update(gate=[1]), "manifest gate: expected an object"),
])
def test_unconditional_and_coverage_fields_are_checked(change, msg):
    raw = unconditional()
    change(raw)
    refused(raw, msg)
