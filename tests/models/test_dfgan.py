"""The DF-GAN NetG rebuilt here: the public parameter names and shapes, its forward pass, and the loader of
the checkpoints the public code writes (nested, DDP prefix, bare; refused pickles; every tensor checked)."""

import pickle

import pytest
import torch

from edge_t2i.errors import CheckpointError
from edge_t2i.models.dfgan import (
    DFGANConfig,
    DFGANGenerator,
    block_channels,
    infer_config,
    load_dfgan,
    read_state,
)

TINY = DFGANConfig(resolution=64, ngf=4, nz=100, cond_dim=256)


def random_state(config: DFGANConfig = TINY, seed: int = 0) -> dict:
    """A random NetG state dict whose fusion MLPs respond to the condition (not the identity init)."""
    torch.manual_seed(seed)
    net = DFGANGenerator(config)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("linear2.weight"):
                p.normal_(0.0, 0.05)
    return net.state_dict()


def test_block_channels_follow_the_public_channel_plan():
    # get_G_in_out_chs(nf, imsize): ngf * min(2^k, 8) for k < log2(imsize) - 1, widest first
    assert block_channels(32, 256) == [(256, 256), (256, 256), (256, 256), (256, 128), (128, 64), (64, 32)]
    assert block_channels(32, 64) == [(256, 256), (256, 128), (128, 64), (64, 32)]
    assert block_channels(8, 32) == [(64, 32), (32, 16), (16, 8)]


def test_parameter_names_and_shapes_are_the_public_ones():
    sd = DFGANGenerator(DFGANConfig(resolution=64, ngf=4, nz=100, cond_dim=256)).state_dict()
    cond = 100 + 256  # every fusion MLP sees cat(noise, sentence)
    expected = {
        "fc.weight": [4 * 8 * 16, 100], "fc.bias": [512],
        "GBlocks.0.c1.weight": [32, 32, 3, 3], "GBlocks.0.c2.weight": [32, 32, 3, 3],
        "GBlocks.0.fuse1.affine0.fc_gamma.linear1.weight": [32, cond],
        "GBlocks.0.fuse1.affine0.fc_gamma.linear2.weight": [32, 32],
        "GBlocks.0.fuse1.affine1.fc_beta.linear2.bias": [32],
        "GBlocks.1.c1.weight": [16, 32, 3, 3], "GBlocks.1.c_sc.weight": [16, 32, 1, 1], "GBlocks.1.c_sc.bias": [16],
        "GBlocks.1.fuse1.affine0.fc_beta.linear1.weight": [32, cond],
        "GBlocks.1.fuse2.affine1.fc_gamma.linear1.weight": [16, cond],
        "GBlocks.3.c2.weight": [4, 4, 3, 3],
        "to_rgb.1.weight": [3, 4, 3, 3], "to_rgb.1.bias": [3],
    }
    for name, shape in expected.items():
        assert list(sd[name].shape) == shape, name
    assert "GBlocks.0.c_sc.weight" not in sd  # no shortcut conv where the width stays
    assert sum(k.startswith("GBlocks.") for k in sd) == 4 * (4 + 2 * 2 * 2 * 4) + 3 * 2  # 4 blocks, 3 with c_sc
    assert len(sd) == 2 + 4 * 36 + 6 + 2
    assert list(sd)[:4] == ["fc.weight", "fc.bias", "GBlocks.0.c1.weight", "GBlocks.0.c1.bias"]


def test_forward_shape_range_and_text_dependence():
    net = DFGANGenerator(TINY).eval()
    net.load_state_dict(random_state())
    z = torch.randn(2, 100)
    with torch.no_grad():
        a = net(z, torch.randn(2, 256))
        b = net(z, torch.randn(2, 256))
    assert a.shape == (2, 3, 64, 64) and a.abs().max() <= 1.0
    assert (a - b).abs().max() > 1e-3  # the sentence changes the image


def test_fusion_starts_as_the_identity():
    net = DFGANGenerator(TINY)
    x = torch.randn(2, 32, 4, 4)
    assert torch.equal(net.GBlocks[0].fuse1.affine0(x, torch.randn(2, 356)), x)


@pytest.mark.parametrize("layout", ["nested", "nested-ddp", "netG", "bare", "safetensors"])
def test_loads_every_layout_the_public_code_writes(tmp_path, layout):
    sd = random_state()
    path = tmp_path / ("g.safetensors" if layout == "safetensors" else "g.pth")
    if layout == "safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(path))
    else:
        inner = {f"module.{k}": v for k, v in sd.items()} if layout == "nested-ddp" else sd
        obj = {"model": {"netG": inner, "netD": {"x": torch.zeros(1)}}, "optimizers": {}, "epoch": 3} \
            if layout.startswith("nested") else {"netG": sd} if layout == "netG" else sd
        torch.save(obj, path)
    net = load_dfgan(path)  # every size read from the shapes
    assert net.config == TINY
    ref = DFGANGenerator(TINY).eval()
    ref.load_state_dict(sd)
    z, c = torch.randn(3, 100), torch.randn(3, 256)
    with torch.no_grad():
        assert torch.equal(net(z, c), ref(z, c))


def test_infer_config_reads_the_sizes_from_the_shapes():
    cfg = DFGANConfig(resolution=128, ngf=8, nz=64, cond_dim=512)
    assert infer_config(DFGANGenerator(cfg).state_dict()) == cfg
    assert infer_config({"weight": torch.zeros(2)}) is None


def save(tmp_path, sd, name="g.pth"):
    path = tmp_path / name
    torch.save({"model": {"netG": sd}}, path)
    return path


def test_a_missing_tensor_is_named(tmp_path):
    sd = random_state()
    del sd["GBlocks.2.fuse2.affine1.fc_beta.linear2.bias"]
    with pytest.raises(CheckpointError, match=r"tensor 'GBlocks\.2\.fuse2\.affine1\.fc_beta\.linear2\.bias' .* is "
                                              r"missing .*\(1 missing in all\)"):
        load_dfgan(save(tmp_path, sd))


def test_an_extra_tensor_is_named(tmp_path):
    sd = random_state()
    sd["GBlocks.0.extra.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match=r"tensor 'GBlocks\.0\.extra\.weight' is not part of DF-GAN NetG"):
        load_dfgan(save(tmp_path, sd))


def test_a_mis_shaped_tensor_is_named(tmp_path):
    sd = random_state()
    sd["GBlocks.1.c2.weight"] = torch.zeros(16, 16, 1, 1)
    with pytest.raises(CheckpointError, match=r"tensor 'GBlocks\.1\.c2\.weight' has shape \[16, 16, 1, 1\], .* needs "
                                              r"\[16, 16, 3, 3\]"):
        load_dfgan(save(tmp_path, sd))


def test_wrong_flags_say_what_the_checkpoint_implies(tmp_path):
    path = save(tmp_path, random_state())
    with pytest.raises(CheckpointError, match=r"'fc\.weight' has shape \[512, 100\].*needs \[1024, 100\].*imply "
                                              r"--resolution 64 --ngf 4 --nz 100 --cond-dim 256"):
        load_dfgan(path, ngf=8)
    with pytest.raises(CheckpointError, match=r"GBlocks\.4\..* is missing .*imply --resolution 64"):
        load_dfgan(path, resolution=128)
    with pytest.raises(CheckpointError, match="--resolution must be one of"):
        load_dfgan(path, resolution=100)


def test_nan_weights_are_refused_naming_the_tensor(tmp_path):
    sd = random_state()
    sd["to_rgb.1.weight"][0, 0, 0, 0] = float("nan")
    with pytest.raises(CheckpointError, match=r"'to_rgb\.1\.weight' holds 1 NaN/inf"):
        load_dfgan(save(tmp_path, sd))


class Payload:
    """A pickle that would run code on load (what weights_only=True refuses)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_that_needs_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"model": {"netG": random_state()}, "payload": Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="refusing .*weights_only=True"):
        load_dfgan(path)
    assert not marker.exists()


def test_a_plain_pickle_of_an_object_is_refused(tmp_path):
    path = tmp_path / "net.pkl"
    path.write_bytes(pickle.dumps(Payload(tmp_path / "ran2")))
    with pytest.raises(CheckpointError, match="refusing"):
        read_state(path)
    assert not (tmp_path / "ran2").exists()


@pytest.mark.parametrize("content, message", [
    ({"model": {"netG": {"fc.weight": 3}}}, r"'fc\.weight' holds a int, not a tensor"),
    ({"model": {"netD": {}}}, r"its 'model' holds no 'netG' \(it holds \['netD'\]\)"),
    ({"epoch": 3, "state": torch.zeros(2)}, r"'epoch' holds a int, not a tensor"),
    ({}, "expected a DF-GAN checkpoint"),
])
def test_files_without_netg_weights_are_refused(tmp_path, content, message):
    path = tmp_path / "x.pth"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match=message):
        read_state(path)


def test_missing_empty_and_folder_paths(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_state(tmp_path / "nope.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_state(tmp_path / "empty.pth")
    with pytest.raises(CheckpointError, match="is a folder"):
        read_state(tmp_path)
