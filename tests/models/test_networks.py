import pytest
import torch

from edge_t2i.errors import CheckpointError
from edge_t2i.models.config import ModelConfig
from edge_t2i.models.networks import NetD, NetG


@pytest.mark.parametrize("resolution", [32, 64, 128, 256])
def test_generator_and_discriminator_shapes(resolution):
    cfg = ModelConfig(resolution=resolution, ngf=4, ndf=4)
    g, d = NetG(cfg).eval(), NetD(cfg, aux_classes=(6, 8, 2, 9))
    img = g(torch.randn(2, cfg.nz), torch.randn(2, cfg.cond_dim))
    assert img.shape == (2, 3, resolution, resolution)
    assert img.min() >= -1 and img.max() <= 1
    assert d(img, torch.randn(2, cfg.cond_dim)).shape == (2,)
    score, logits = d(img, torch.randn(2, cfg.cond_dim), with_aux=True)
    assert logits.shape == (2, 25)


def test_saturated_output_still_has_a_gradient_in_training():
    """The clamp is for inference only: a saturated generator must be able to come back."""
    cfg = ModelConfig(resolution=32, ngf=4)
    g = NetG(cfg).train()
    with torch.no_grad():
        g.to_rgb.bias.fill_(-3.0)  # push every pixel towards black, beyond -1 after the scale
    out = g(torch.randn(2, cfg.nz), torch.randn(2, cfg.cond_dim))
    assert out.min() < -1.0
    out.mean().backward()
    assert g.to_rgb.bias.grad.abs().sum() > 0
    assert g.eval()(torch.randn(2, cfg.nz), torch.randn(2, cfg.cond_dim)).min() >= -1.0


def test_text_sets_the_layout_through_the_first_linear():
    cfg = ModelConfig(resolution=32, ngf=4)
    g = NetG(cfg).eval()
    assert g.fc.in_features == cfg.nz + cfg.cond_dim
    z = torch.randn(1, cfg.nz)
    assert not torch.equal(g(z, torch.randn(1, cfg.cond_dim)), g(z, torch.randn(1, cfg.cond_dim)))


def test_fusion_starts_as_identity_and_text_changes_the_image_once_trained():
    cfg = ModelConfig(resolution=32, ngf=4, text_in_fc=False)
    g = NetG(cfg).eval()
    z = torch.randn(1, cfg.nz)
    a, b = g(z, torch.randn(1, cfg.cond_dim)), g(z, torch.randn(1, cfg.cond_dim))
    assert torch.equal(a, b)  # gamma=1, beta=0 at init: text has no effect yet
    with torch.no_grad():
        g.blocks[0].fuse1.a1.fc2.weight.normal_()
    assert not torch.equal(g(z, torch.randn(1, cfg.cond_dim)), g(z, torch.randn(1, cfg.cond_dim)))


def test_noise_reaches_the_fusion_mlps_when_configured():
    cfg = ModelConfig(resolution=32, ngf=4, noise_in_fusion=8)
    g = NetG(cfg).eval()
    assert g.blocks[0].fuse1.a1.fc1.in_features == cfg.cond_dim + 8
    with torch.no_grad():
        for name, p in g.named_parameters():
            if "fc2.weight" in name:
                p.normal_(0, 0.05)
        g.fc.weight[:, : cfg.nz] = 0  # noise now acts through the fusion only
    e, z = torch.randn(1, cfg.cond_dim), torch.randn(1, cfg.nz)
    later = z.clone()
    later[:, 8:] = torch.randn(1, cfg.nz - 8)
    assert torch.equal(g(z, e), g(later, e))  # only the first 8 dimensions are read there
    assert not torch.equal(g(z, e), g(torch.randn(1, cfg.nz), e))


def test_only_edge_friendly_ops_in_the_exported_graph(tmp_path, checkpoint_dir):
    import onnx

    from edge_t2i.convert.export import export_onnx

    path = export_onnx(checkpoint_dir, tmp_path / "g.onnx").path
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    allowed = {"Gemm", "MatMul", "Conv", "Resize", "Mul", "Add", "LeakyRelu", "Relu", "Tanh", "Clip", "Reshape",
               "Unsqueeze", "Slice", "Constant", "Concat", "Identity", "BatchNormalization"}
    assert ops <= allowed, ops - allowed
    assert "ConvTranspose" not in ops
    assert "BatchNormalization" in ops  # the fusion's multiply-add, one pass (Affine.as_batch_norm)


@pytest.mark.parametrize("bad", [{"resolution": 48}, {"ngf": 0}, {"architecture": "stylegan"}])
def test_config_validation(bad):
    with pytest.raises(CheckpointError):
        ModelConfig(**bad)


def test_config_rejects_unknown_keys():
    with pytest.raises(CheckpointError, match="unknown model config keys"):
        ModelConfig.from_dict({"resolution": 64, "n_layer": 12})


def _reference_block(block, x, cond):
    """GBlock in DF-GAN's written order: upsample first, every operation at the output resolution."""
    up = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
    h = block.conv2(block.fuse2(block.conv1(block.fuse1(up, cond)), cond))
    return (block.shortcut(up) if block.shortcut is not None else up) + h


def test_low_resolution_fusion_is_the_same_function_as_upsampling_first():
    """GBlock runs the first fusion and the shortcut before upsampling (cheaper); nearest upsampling
    commutes with per-pixel operations, so the result must equal DF-GAN's order bit for bit."""
    torch.manual_seed(0)
    cfg = ModelConfig(resolution=32, ngf=4)
    g = NetG(cfg).eval()
    for block in g.blocks:  # move the fusions away from the identity they start at
        for p in block.parameters():
            p.data.add_(0.3 * torch.randn_like(p))
    x, cond = torch.randn(3, g.c0, 4, 4), torch.randn(3, cfg.cond_dim + cfg.noise_in_fusion)
    for block in g.blocks:
        fast, ref = block(x, cond), _reference_block(block, x, cond)
        assert fast.shape == ref.shape and torch.equal(fast, ref)
        x = fast


def test_batch_norm_form_of_the_fusion_equals_multiply_add(monkeypatch):
    """The export writes x * gamma + beta as one BatchNormalization over [1, B*C, H, W]."""
    torch.manual_seed(1)
    cfg = ModelConfig(resolution=32, ngf=4)
    g = NetG(cfg).eval()
    for p in g.parameters():
        p.data.add_(0.2 * torch.randn_like(p))
    z, emb = torch.randn(5, cfg.nz), torch.randn(5, cfg.cond_dim)
    plain = g(z, emb)
    monkeypatch.setattr(NetG.__module__ + ".Affine.as_batch_norm", True)
    assert torch.allclose(g(z, emb), plain, atol=1e-6)  # a batch of 5: each sample keeps its own gamma, beta
