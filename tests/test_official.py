"""import-official: the official pix2pix `latest_net_G.pth` and CycleGAN `NAME.pth` files, imported safely and
bit-identically.

pix2pix: the official U-Net key layout is written out below from the official definitions
(models/networks.py: UnetGenerator builds UnetSkipConnectionBlock from the innermost outwards; each
block's layers sit in `self.model`, an nn.Sequential), and the `.pth` files are made from our own
networks with the key mapping applied in reverse. CycleGAN: the official ResnetGenerator / ResnetBlock
are rebuilt from their definition (further down), so each `.pth` is saved from the official network
itself and the import is compared with its outputs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pix2pix_core.checkpoint import held_generators, load_generator, read_checkpoint, read_header
from pix2pix_core.cli import main
from pix2pix_core.config import TrainConfig, cyclegan_config
from pix2pix_core.errors import CheckpointError, Pix2PixError
from pix2pix_core.inference import Translator
from pix2pix_core.networks import build_generator
from pix2pix_core.official import import_official, official_key, our_key

from official_files import NGF, official_state, our_generator


def official_unet_shapes(input_nc: int, output_nc: int, num_downs: int, ngf: int) -> dict[str, tuple]:
    """Key -> shape of the official UnetGenerator(input_nc, output_nc, num_downs, ngf, BatchNorm2d) state dict.

    Official blocks, outermost first, as (outer_nc, inner_nc, kind); layers of each block's `model`:
      outermost [downconv, submodule, uprelu, upconv(bias), tanh]                 -> 0, 3; submodule at 1
      middle    [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm(, dropout)]
                                                                                  -> 1, 2, 5, 6; submodule at 3
      innermost [downrelu, downconv, uprelu, upconv, upnorm]                      -> 1, 3, 4
    Convolutions before batch norm have no bias; the outermost up convolution has one.
    """
    blocks = [(output_nc, ngf, "outermost"), (ngf, ngf * 2, "middle"), (ngf * 2, ngf * 4, "middle"),
              (ngf * 4, ngf * 8, "middle")] + [(ngf * 8, ngf * 8, "middle")] * (num_downs - 5) + \
             [(ngf * 8, ngf * 8, "innermost")]
    shapes: dict[str, tuple] = {}

    def norm(prefix, channels):
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (channels,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    prefix = "model.model"
    for outer, inner, kind in blocks:
        if kind == "outermost":
            shapes[f"{prefix}.0.weight"] = (inner, input_nc, 4, 4)
            shapes[f"{prefix}.3.weight"] = (inner * 2, outer, 4, 4)
            shapes[f"{prefix}.3.bias"] = (outer,)
            prefix += ".1.model"
        elif kind == "middle":
            shapes[f"{prefix}.1.weight"] = (inner, outer, 4, 4)
            norm(f"{prefix}.2", inner)
            shapes[f"{prefix}.5.weight"] = (inner * 2, outer, 4, 4)
            norm(f"{prefix}.6", outer)
            prefix += ".3.model"
        else:
            shapes[f"{prefix}.1.weight"] = (inner, outer, 4, 4)
            shapes[f"{prefix}.3.weight"] = (inner, outer, 4, 4)
            norm(f"{prefix}.4", outer)
    return shapes


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(code, err, *words):
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert all(word in lines[0] for word in words), lines[0]


# ------------------------------------------------------------------------------------------- layout
@pytest.mark.parametrize("netG,num_downs", [("unet_256", 8), ("unet_128", 7)])
@pytest.mark.parametrize("task,input_nc,output_nc", [("facades", 3, 3), ("colorize", 1, 2)])
def test_our_unet_has_the_official_key_layout(netG, num_downs, task, input_nc, output_nc):
    net = build_generator(TrainConfig(task=task, netG=netG, ngf=NGF))
    ours = {official_key(k): tuple(v.shape) for k, v in net.state_dict().items()}
    assert ours == official_unet_shapes(input_nc, output_nc, num_downs, NGF)


def test_official_facades_model_size():
    """The published facades model: unet_256, ngf 64 = 54,413,955 parameters (~109 MB in fp16)."""
    shapes = official_unet_shapes(3, 3, 8, 64)
    params = sum(torch.Size(s).numel() for k, s in shapes.items() if not k.endswith(("running_mean", "running_var",
                                                                                       "num_batches_tracked")))
    with torch.device("meta"):  # our network, shapes only
        ours = sum(p.numel() for p in build_generator(TrainConfig(netG="unet_256", ngf=64)).parameters())
    assert params == ours == 54_413_955


# ------------------------------------------------------------------------------------------- import
@pytest.mark.parametrize("prefix,drop_counters", [("", False), ("module.", True)])
def test_import_gives_bit_identical_outputs(tmp_path, capsys, prefix, drop_counters):
    """A DataParallel `module.` prefix and PyTorch < 0.4 files (no num_batches_tracked) import too."""
    net = our_generator()
    pth = tmp_path / "latest_net_G.pth"
    torch.save(official_state(net, prefix, drop_counters), pth)
    out = tmp_path / "checkpoints" / "facades_official.safetensors"
    code, stdout, err = run(capsys, "import-official", pth, "--netG", "unet_256", "--task", "facades",
                            "--ngf", NGF, "--out", out, "--dtype", "fp32")
    assert code == 0 and err == "" and f"wrote {out}" in stdout

    # the network: every weight bit-identical, the same eval-mode output
    generator, config, metadata = load_generator(out)
    x = torch.rand(2, 3, 256, 256) * 2 - 1
    net.eval(), generator.eval()
    with torch.inference_mode():
        assert torch.equal(net(x), generator(x))

    # the official test mode (batch size 1: per-image statistics, dropout on), via Translator
    assert config.batch_size == 1 and config.dropout and config.test_dropout and config.norm == "batch"
    assert (config.task, config.netG, config.ngf, config.direction, config.crop_size) == \
        ("facades", "unet_256", NGF, "BtoA", 256)
    weights = {k: v.clone() for k, v in net.state_dict().items()}  # Translator converts `net` to bf16 in place
    imported = Translator.load(out, device="cpu")
    original = Translator(net, config, "cpu")
    for seed in (0, 7):
        assert torch.equal(imported.run_network(x[:1], seed), original.run_network(x[:1], seed))
    assert not torch.equal(imported.run_network(x[:1], 0), imported.run_network(x[:1], 1))  # dropout is on
    batch_norms = [m for m in imported.generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    dropouts = [m for m in imported.generator.modules() if isinstance(m, torch.nn.Dropout)]
    assert batch_norms and all(m.training and not m.track_running_stats for m in batch_norms)
    assert len(dropouts) == 3 and all(m.training for m in dropouts)

    # in fp32, Translator computes exactly what the official test script does (train mode, batch size 1)
    config32 = TrainConfig.from_json(metadata["config"])
    config32.precision = "fp32"
    fp32 = Translator(load_generator(out)[0], config32, "cpu")
    reference = our_generator()
    reference.load_state_dict(weights)
    reference.train().to(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.manual_seed(5)
        expected = reference(x[:1].contiguous(memory_format=torch.channels_last))
    assert torch.equal(fp32.run_network(x[:1], seed=5), expected)

    # where it came from
    origin = json.loads(metadata["imported_from"])
    assert metadata["kind"] == "generator"
    assert origin["file"] == "latest_net_G.pth" and origin["repository"] == "junyanz/pytorch-CycleGAN-and-pix2pix"
    assert origin["sha256"] == hashlib.sha256(pth.read_bytes()).hexdigest()
    assert origin["parameters"] == sum(p.numel() for p in net.parameters())


def test_import_fp16_default_and_other_tasks(tmp_path):
    """fp16 by default (half the size); aligned defaults to AtoB; colorize is 1 -> 2 channels and colorizes."""
    aligned = our_generator("aligned", seed=1)
    torch.save(official_state(aligned), tmp_path / "sat2map.pth")
    path = import_official(tmp_path / "sat2map.pth", tmp_path / "sat2map.safetensors", task="aligned", ngf=NGF)
    tensors, metadata = read_checkpoint(path)
    assert all(v.dtype == torch.float16 for k, v in tensors.items() if v.is_floating_point())
    config = TrainConfig.from_json(metadata["config"])
    assert (config.task, config.direction) == ("aligned", "AtoB")
    reloaded = load_generator(path)[0].eval()
    expected = {k: v.half().float() if v.is_floating_point() else v for k, v in aligned.state_dict().items()}
    assert all(torch.equal(reloaded.state_dict()[k], v) for k, v in expected.items())

    colorizer = our_generator("colorize", netG="unet_128", seed=2)
    torch.save(official_state(colorizer, "module."), tmp_path / "color.pth")
    path = import_official(tmp_path / "color.pth", tmp_path / "color.safetensors", netG="unet_128",
                           task="colorize", ngf=NGF)
    translator = Translator.load(path, device="cpu")
    assert (translator.task, translator.size) == ("colorize", 128)
    from PIL import Image

    assert translator.translate(Image.new("RGB", (40, 30), (90, 120, 200))).size == (40, 30)


# ------------------------------------------------------------------------------------------- safety
MARKER_NAME = "executed.txt"


def write_marker(path):
    Path(path).write_text("the pickle ran code")


class Payload:
    """Unpickling this calls write_marker: what a hostile .pth would do with os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (write_marker, (str(self.marker),))


@pytest.mark.parametrize("what", ["object", "in_dict", "module"])
def test_pickle_with_code_is_refused_without_running_it(tmp_path, capsys, what):
    marker = tmp_path / MARKER_NAME
    state = official_state(our_generator())
    payload = {"object": Payload(marker), "in_dict": {**state, "extra": Payload(marker)},
               "module": our_generator()}[what]
    pth = tmp_path / "latest_net_G.pth"
    torch.save(payload, pth)
    assert not marker.exists()
    out = tmp_path / "out.safetensors"
    code, _, err = run(capsys, "import-official", pth, "--netG", "unet_256", "--task", "facades", "--ngf", NGF,
                       "--out", out)
    assert_one_error_line(code, err, "refused", "more than tensors")
    assert not marker.exists() and not out.exists()


def test_a_plain_pickle_of_another_protocol_is_refused_in_one_line(tmp_path, capsys):
    """A hostile .pth written with pickle itself (protocol 4, not torch.save's zip): torch's "Detected pickle
    protocol 4" warning came first, as a `warning:` line before the refusal."""
    marker = tmp_path / MARKER_NAME
    pth = tmp_path / "latest_net_G.pth"
    pth.write_bytes(pickle.dumps({"x": Payload(marker)}, protocol=4))
    code, _, err = run(capsys, "import-official", pth, "--netG", "unet_256", "--task", "facades", "--ngf", NGF,
                       "--out", tmp_path / "out.safetensors")
    assert_one_error_line(code, err, "refused")
    assert not marker.exists()


def test_not_a_pth_and_non_tensor_values_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"<html>404 Not Found</html>")
    code, _, err = run(capsys, "import-official", bad, "--netG", "unet_256", "--task", "facades", "--out",
                       tmp_path / "o.safetensors")
    assert_one_error_line(code, err, "not a PyTorch .pth file")
    bad.write_bytes(b"\x80\x02garbage")  # a pickle header, then nonsense
    code, _, err = run(capsys, "import-official", bad, "--netG", "unet_256", "--task", "facades", "--out",
                       tmp_path / "o.safetensors")
    assert_one_error_line(code, err, "refused", "not a plain pickle of tensors")
    torch.save({"epoch": 3, "weights": [1.0, 2.0]}, bad)  # plain containers load, but are not a state dict
    code, _, err = run(capsys, "import-official", bad, "--netG", "unet_256", "--task", "facades", "--out",
                       tmp_path / "o.safetensors")
    assert_one_error_line(code, err, "not a generator state dict", "epoch")
    code, _, err = run(capsys, "import-official", tmp_path / "ghost.pth", "--netG", "unet_256", "--task", "facades",
                       "--out", tmp_path / "o.safetensors")
    assert_one_error_line(code, err, "file not found")


# ------------------------------------------------------------------------------------------- errors
@pytest.fixture(scope="module")
def official_pth(tmp_path_factory):
    path = tmp_path_factory.mktemp("official") / "latest_net_G.pth"
    torch.save(official_state(our_generator()), path)
    return path


@pytest.mark.parametrize("options,words", [
    (["--netG", "resnet_9blocks"], ["--netG resnet_9blocks", "unet_256, unet_128"]),
    (["--netG", "unet_128"], ["unknown keys", "missing keys", "try --netG unet_256"]),
    (["--ngf", 8], ["model.model.0.weight has shape (4, 3, 4, 4)", "expects (8, 3, 4, 4)", "try --ngf 4"]),
    (["--task", "colorize"], ["model.model.0.weight has shape", "needs 1", "colorization"]),
])
def test_wrong_netG_or_shapes_are_one_line(official_pth, tmp_path, capsys, options, words):
    settings = {"--netG": "unet_256", "--task": "facades", "--ngf": NGF}
    settings.update(dict(zip(options[::2], options[1::2])))
    argv = [x for item in settings.items() for x in item]
    out = tmp_path / "o.safetensors"
    code, _, err = run(capsys, "import-official", official_pth, *argv, "--out", out)
    assert_one_error_line(code, err, *words)
    assert not out.exists()


@pytest.mark.parametrize("argv,words,unwanted", [
    (["--netG", "unet_256"], ["a pix2pix import needs --task:", "facades", "aligned", "colorize"], ["--netG unet"]),
    (["--netG", "unet_128"], ["a pix2pix import needs --task:", "facades", "aligned", "colorize"], ["--netG unet"]),
    (["--task", "facades"], ["a pix2pix import needs --netG:", "--netG unet_256"], ["--task facades"]),
    (["--model", "pix2pix"], ["a pix2pix import needs --netG and --task:", "unet_256", "aligned"], []),
    ([], ["say which model the file is", "--model cyclegan"], []),
])
def test_a_pix2pix_import_without_its_task_or_netG_names_what_is_missing(official_pth, tmp_path, capsys, argv,
                                                                        words, unwanted):
    """`import-official x.pth --netG unet_256` (the README's command without --task) was told "say which model
    the file is" as if nothing said it is a pix2pix one: a U-Net --netG or a pix2pix --task says so."""
    out = tmp_path / "o.safetensors"
    code, _, err = run(capsys, "import-official", official_pth, *argv, "--out", out)
    assert_one_error_line(code, err, *words)
    assert not any(word in err for word in unwanted), err
    assert not out.exists()


@pytest.mark.parametrize("dtype", ["fp16", torch.int8, torch.float64, None])
def test_import_takes_the_three_weight_dtypes_as_export_does(official_pth, tmp_path, dtype):
    """dtype="fp16" failed as torch's "Invalid device string: 'fp16'" once the whole file was read and checked; an
    integer dtype wrote truncated weights. Refused up front in export_generator's words (check_export_dtype)."""
    out = tmp_path / "o.safetensors"
    with pytest.raises(Pix2PixError, match=r"^dtype must be torch.float16, torch.bfloat16 or torch.float32, got "
                                           + re.escape(repr(dtype))):
        import_official(official_pth, out, netG="unet_256", task="facades", ngf=NGF, dtype=dtype)
    assert not out.exists()
    tensors, _ = read_checkpoint(import_official(official_pth, out, netG="unet_256", task="facades", ngf=NGF,
                                                 dtype=torch.bfloat16))
    assert {v.dtype for v in tensors.values() if v.is_floating_point()} == {torch.bfloat16}


def test_the_dtype_refusal_names_the_dtypes_of_the_export_table(monkeypatch):
    """check_export_dtype spelled the three dtypes out by hand: a dtype added to (or taken from) the table
    EXPORT_DTYPES is made of would have been refused, or taken, in words that said otherwise."""
    from pix2pix_core import checkpoint

    monkeypatch.setattr(checkpoint, "EXPORT_DTYPES", (torch.float16, torch.float64))
    checkpoint.check_export_dtype(torch.float64)
    with pytest.raises(Pix2PixError, match=r"^dtype must be torch\.float16 or torch\.float64, got torch\.float32$"):
        checkpoint.check_export_dtype(torch.float32)
    monkeypatch.setattr(checkpoint, "EXPORT_DTYPES", (torch.float32,))
    with pytest.raises(Pix2PixError, match=r"^dtype must be torch\.float32, got torch\.int8$"):
        checkpoint.check_export_dtype(torch.int8)


def test_unknown_and_missing_keys_are_named(tmp_path, capsys):
    state = official_state(our_generator())
    del state["model.model.3.bias"]
    state["model.model.9.weight"] = torch.zeros(3)
    state["netD.model.0.weight"] = torch.zeros(3)
    pth = tmp_path / "latest_net_G.pth"
    torch.save(state, pth)
    code, _, err = run(capsys, "import-official", pth, "--netG", "unet_256", "--task", "facades", "--ngf", NGF,
                       "--out", tmp_path / "o.safetensors")
    assert_one_error_line(code, err, "unknown keys: model.model.9.weight, netD.model.0.weight",
                          "missing keys: model.model.3.bias")


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["import-official", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert all(option in text for option in ("--netG", "--task", "--direction", "--ngf", "--out", "weights_only"))


def test_no_dropout_overflow_and_a_damaged_old_file(tmp_path, capsys):
    """A model trained with --no_dropout imported with dropout noise on; an fp16 import could write inf after
    the finite check; a damaged pre-1.6 .pth raised AssertionError (a traceback)."""
    import numpy as np
    from PIL import Image

    from pix2pix_core.errors import CheckpointError

    net = our_generator(seed=4)
    torch.save(official_state(net), tmp_path / "plain.pth")
    path = import_official(tmp_path / "plain.pth", tmp_path / "plain.safetensors", ngf=NGF, dtype=torch.float32,
                           dropout=False)
    translator = Translator.load(path, device="cpu")
    label_map = Image.new("RGB", (64, 64), (0, 0, 222))
    assert np.array_equal(np.asarray(translator.translate(label_map, seed=0)),
                          np.asarray(translator.translate(label_map, seed=1)))  # no dropout noise
    big = official_state(net)
    key = next(k for k in big if k.endswith("running_var"))
    big[key] = big[key] * 0 + 1e5  # finite in fp32, inf in fp16
    torch.save(big, tmp_path / "big.pth")
    with pytest.raises(CheckpointError, match="do not fit in float16; import with --dtype bf16 or fp32"):
        import_official(tmp_path / "big.pth", tmp_path / "big.safetensors", ngf=NGF)
    assert not (tmp_path / "big.safetensors").exists()
    import pix2pix_core.official as official

    def damaged_old_format(*args, **kwargs):  # what torch's pre-1.6 reader raises on some damaged files
        raise AssertionError("storage key '94' not found in deserialized_objects")

    real_load = official.torch.load
    official.torch.load = damaged_old_format
    try:
        with pytest.raises(CheckpointError, match="not a readable PyTorch .pth file"):
            import_official(tmp_path / "plain.pth", tmp_path / "damaged.safetensors", ngf=NGF)
    finally:
        official.torch.load = real_load


# ------------------------------------------------------------------------------------------- CycleGAN
# The official CycleGAN generator (models/networks.py: ResnetGenerator, ResnetBlock), rebuilt here from its
# definition so that the import is checked against the network the published files were saved from: layer
# for layer in the same nn.Sequential positions, with the official names (`model`, and `conv_block` inside a
# residual block), the official options (padding type, dropout) and its norm for CycleGAN, instance norm
# without affine parameters (and, in its code of early 2018 / PyTorch < 0.4, with running statistics kept).
def official_instance_norm(track_running_stats=False):
    return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=track_running_stats)


class OfficialResnetBlock(nn.Module):
    """x + conv_block(x): [pad, conv 3x3, norm, ReLU, (Dropout 0.5), pad, conv 3x3, norm]; zero padding is the
    convolutions' own padding=1 instead of a padding layer."""

    def __init__(self, dim, padding_type, norm_layer, use_dropout, use_bias):
        super().__init__()
        self.conv_block = nn.Sequential(*self._layers(dim, padding_type, norm_layer, use_dropout, use_bias))

    @staticmethod
    def _layers(dim, padding_type, norm_layer, use_dropout, use_bias):
        pad_layer = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d, "zero": None}[padding_type]
        inner = 1 if pad_layer is None else 0

        def pad():
            return [pad_layer(1)] if pad_layer is not None else []

        layers = pad() + [nn.Conv2d(dim, dim, kernel_size=3, padding=inner, bias=use_bias), norm_layer(dim),
                          nn.ReLU(True)]
        layers += [nn.Dropout(0.5)] if use_dropout else []
        return layers + pad() + [nn.Conv2d(dim, dim, kernel_size=3, padding=inner, bias=use_bias), norm_layer(dim)]

    def forward(self, x):
        return x + self.conv_block(x)


class OfficialResnetGenerator(nn.Module):
    """[reflect pad 3, conv 7x7, norm, ReLU], 2 x [conv 3x3 stride 2, norm, ReLU], n_blocks residual blocks at
    ngf*4, 2 x [transposed conv 3x3 stride 2 (output_padding 1), norm, ReLU], [reflect pad 3, conv 7x7, Tanh].
    Convolutions have a bias exactly when the norm is instance norm; the last one always."""

    def __init__(self, input_nc, output_nc, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False, n_blocks=6,
                 padding_type="reflect"):
        super().__init__()
        use_bias = norm_layer.func == nn.InstanceNorm2d if isinstance(norm_layer, functools.partial) \
            else norm_layer == nn.InstanceNorm2d
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
                  norm_layer(ngf), nn.ReLU(True)]
        for i in range(2):  # downsampling
            width = ngf * 2 ** i
            layers += [nn.Conv2d(width, width * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                       norm_layer(width * 2), nn.ReLU(True)]
        layers += [OfficialResnetBlock(ngf * 4, padding_type, norm_layer, use_dropout, use_bias)
                   for _ in range(n_blocks)]
        for i in range(2):  # upsampling
            width = ngf * 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(width, int(width / 2), kernel_size=3, stride=2, padding=1,
                                          output_padding=1, bias=use_bias),
                       norm_layer(int(width / 2)), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


CYCLEGAN_BLOCKS = {"resnet_9blocks": 9, "resnet_6blocks": 6}


def official_cyclegan(netG="resnet_9blocks", ngf=8, seed=0, norm=None, input_nc=3, **options):
    """An official CycleGAN generator as `test.py --model test --no_dropout` builds it, with random weights
    (biases too: zero-initialised ones would hide a bias mix-up) and random running statistics where kept."""
    torch.manual_seed(seed)
    net = OfficialResnetGenerator(input_nc, 3, ngf, norm or official_instance_norm(), n_blocks=CYCLEGAN_BLOCKS[netG],
                                  **options)
    with torch.no_grad():
        for name, value in net.state_dict().items():
            if name.endswith("running_mean") or name.endswith(".bias"):
                value.normal_(0, 0.1)
            elif name.endswith("running_var"):
                value.uniform_(0.5, 2.0)
            elif name.endswith("weight"):
                value.normal_(1.0 if value.dim() == 1 else 0.0, 0.02)
    return net


def save_official(net, path, prefix=""):
    torch.save({prefix + k: v for k, v in net.state_dict().items()}, path)
    return path


def import_cyclegan(capsys, pth, out, *options):
    code, stdout, err = run(capsys, "import-official", pth, "--model", "cyclegan", *options, "--out", out)
    assert code == 0 and err == "", err
    return stdout


@pytest.mark.parametrize("netG", ["resnet_9blocks", "resnet_6blocks"])
@pytest.mark.parametrize("ngf", [64, 8])
def test_our_resnet_has_the_official_key_layout(netG, ngf):
    """Every key and shape the same, once the official `conv_block` is our `block` (and the published models'
    parameter count: resnet_9blocks at ngf 64 is 11,378,179)."""
    with torch.device("meta"):
        official = OfficialResnetGenerator(3, 3, ngf, official_instance_norm(), n_blocks=CYCLEGAN_BLOCKS[netG])
        ours = build_generator(cyclegan_config(netG=netG, ngf=ngf))
    assert {official_key(k): tuple(v.shape) for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in official.state_dict().items()}
    assert all(our_key(official_key(k)) == k for k in ours.state_dict())
    if (netG, ngf) == ("resnet_9blocks", 64):
        assert sum(p.numel() for p in ours.parameters()) == 11_378_179


@pytest.mark.parametrize("netG,ngf,prefix", [("resnet_9blocks", 64, ""), ("resnet_6blocks", 64, "module."),
                                             ("resnet_9blocks", 8, "module."), ("resnet_6blocks", 8, "")])
def test_cyclegan_import_gives_bit_identical_outputs(tmp_path, capsys, netG, ngf, prefix):
    """A DataParallel `module.` prefix is stripped too; the import's header says what it is and where from."""
    official = official_cyclegan(netG, ngf, seed=ngf)
    pth = save_official(official, tmp_path / "horse2zebra.pth", prefix)
    out = tmp_path / "checkpoints" / "horse2zebra.safetensors"
    stdout = import_cyclegan(capsys, pth, out, "--netG", netG, "--ngf", ngf, "--dtype", "fp32")
    assert f"wrote {out}" in stdout and f"official CycleGAN {netG} generator, A -> B" in stdout

    generator, config, metadata = load_generator(out)
    x = torch.rand(2, 3, 64, 48) * 2 - 1  # ResNets run at any multiple of 4
    with torch.inference_mode():
        expected = official.eval()(x)
        assert torch.equal(generator.eval()(x), expected)
        # the official test script runs G in train mode (model.eval() only with --eval): the same here
        assert torch.equal(official.train()(x), expected)
    assert (config.model, config.task, config.netG, config.ngf, config.norm, config.dropout, config.direction) == \
        ("cyclegan", "unpaired", netG, ngf, "instance", False, "AtoB")
    assert "direction" not in metadata  # the A -> B export's header, as `export --direction AtoB` writes it
    origin = json.loads(metadata["imported_from"])
    assert (origin["file"], origin["model"], origin["netG"], origin["ngf"]) == ("horse2zebra.pth", "cyclegan", netG,
                                                                               ngf)
    assert origin["sha256"] == hashlib.sha256(pth.read_bytes()).hexdigest()
    assert origin["parameters"] == sum(p.numel() for p in official.parameters())

    # Translator: instance norm needs no batch-norm mode, there is no dropout; in fp32 it computes exactly what
    # the official network does (on its channels_last input, the Translator's CPU layout)
    translator = Translator.load(out, device="cpu")
    assert not translator.per_image and not any(isinstance(m, nn.Dropout) for m in translator.generator.modules())
    config32 = TrainConfig.from_json(metadata["config"])
    config32.precision = "fp32"
    fp32 = Translator(load_generator(out)[0], config32, "cpu")
    channels_last = x[:1].contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        reference = official.eval().to(memory_format=torch.channels_last)(channels_last)
    assert torch.equal(fp32.run_network(x[:1], seed=0), reference)
    assert torch.equal(fp32.run_network(x[:1], seed=0), fp32.run_network(x[:1], seed=9))  # no noise


def test_stale_instance_norm_statistics_are_ignored_as_the_official_loader_does(tmp_path, capsys):
    """Files saved while instance norm kept running statistics (PyTorch < 0.4; the official code of early
    2018) hold running_mean / running_var / num_batches_tracked for every instance norm. The official loader
    drops them and normalises with each image's own statistics: so do we (refused as unknown keys before)."""
    old = official_cyclegan("resnet_6blocks", 8, seed=3, norm=official_instance_norm(track_running_stats=True))
    state = old.state_dict()
    stale = [k for k in state if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert len(stale) == 3 * (3 + 2 * 6 + 2)  # 3 buffers for each of the 17 instance norms
    pth = save_official(old, tmp_path / "style_monet.pth")
    out = tmp_path / "style_monet.safetensors"
    stdout = import_cyclegan(capsys, pth, out, "--netG", "resnet_6blocks", "--ngf", 8, "--dtype", "fp32")
    assert f"{len(stale)} instance-norm running statistics of an older PyTorch ignored" in stdout
    assert json.loads(read_checkpoint(out)[1]["imported_from"])["ignored_keys"] == len(stale)

    current = official_cyclegan("resnet_6blocks", 8, seed=99)  # today's official network with the same weights
    current.load_state_dict({k: v for k, v in state.items() if k not in stale})
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.inference_mode():
        assert torch.equal(load_generator(out)[0].eval()(x), current.eval()(x))


def test_cyclegan_fp16_default_and_a_b_to_a_import(tmp_path, capsys):
    """fp16 by default (half the file); --direction BtoA stores the generator as a CycleGAN's F, as
    `export --direction BtoA` does: translate takes it without a direction, and A -> B is refused."""
    official = official_cyclegan(seed=5)
    pth = save_official(official, tmp_path / "zebra2horse.pth")
    path = import_official(pth, tmp_path / "zebra2horse.safetensors", model="cyclegan", ngf=8)
    tensors, metadata = read_checkpoint(path)
    assert all(v.dtype == torch.float16 for v in tensors.values())
    expected = {k: v.half().float() for k, v in official.state_dict().items()}
    assert {official_key(k): v for k, v in load_generator(path)[0].state_dict().items()}.keys() == expected.keys()
    assert all(torch.equal(load_generator(path)[0].state_dict()[our_key(k)], v) for k, v in expected.items())

    out = tmp_path / "as_f.safetensors"
    stdout = import_cyclegan(capsys, pth, out, "--ngf", 8, "--direction", "BtoA", "--dtype", "fp32")
    assert "B -> A (the CycleGAN's F)" in stdout
    assert read_header(out)["direction"] == "BtoA" and held_generators(out) == ["BtoA"]
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.inference_mode():
        assert torch.equal(load_generator(out, direction="BtoA")[0].eval()(x), official.eval()(x))
    with warnings.catch_warnings():  # the generator it holds, B -> A, as asked: no "it translates B -> A" warning
        warnings.simplefilter("error")
        held = Translator.load(out, device="cpu")
    with torch.inference_mode():
        assert (held.run_network(x) - official.eval()(x)).abs().mean() < 0.02  # bf16 on the CPU
    with pytest.raises(CheckpointError, match="B -> A generator only; it is one official CycleGAN generator "
                                              r"\(imported from zebra2horse.pth\)"):
        Translator.load(out, device="cpu", direction="AtoB")


def test_an_imported_cyclegan_in_translate_onnx_test_and_the_app(tmp_path, capsys):
    """What uses a one-generator CycleGAN export uses it: `translate`, the ONNX export (which keeps its
    provenance), the app's unpaired picker (A -> B). What needs the other generator says where it comes from:
    the official model named the other way round, not the training checkpoint nobody has."""
    from PIL import Image

    from demo.state import ModelRegistry

    folder = tmp_path / "checkpoints"
    pth = save_official(official_cyclegan(seed=6), tmp_path / "horse2zebra.pth")
    model = folder / "horse2zebra.safetensors"
    import_cyclegan(capsys, pth, model, "--ngf", 8)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (40, 30), (120, 90, 60)).save(photos / "horse.png")

    code, stdout, err = run(capsys, "translate", "--checkpoint", model, photos, "--out", tmp_path / "zebras")
    assert code == 0 and Image.open(tmp_path / "zebras" / "horse.png").size == (40, 30)
    code, _, err = run(capsys, "translate", "--checkpoint", model, photos, "--out", tmp_path / "no",
                       "--direction", "BtoA")
    assert_one_error_line(code, err, "A -> B generator only", "imported from horse2zebra.pth",
                          "the official model named the other way round with it", "--reverse zebra2horse.pth")
    assert not (tmp_path / "no").exists()

    registry = ModelRegistry([folder], device="cpu")
    assert registry.names("unpaired") == ["horse2zebra"]
    assert registry.translator("horse2zebra", "unpaired", "AtoB").translate(photos / "horse.png").size == (40, 30)
    with pytest.raises(CheckpointError, match="one official CycleGAN generator"):
        registry.translator("horse2zebra", "unpaired", "BtoA")

    data = tmp_path / "unpaired"
    for side in ("testA", "testB"):
        (data / side).mkdir(parents=True)
        Image.new("RGB", (32, 32), (10, 200, 10)).save(data / side / "x.png")
    code, _, err = run(capsys, "test", "--checkpoint", model, "--data", data, "--out", tmp_path / "report")
    assert_one_error_line(code, err, "A -> B generator only; test needs both", "translate with it",
                          "import it with the official model named the other way round (`import-official --reverse`)")

    pytest.importorskip("onnxruntime")
    onnx_file = tmp_path / "horse2zebra.onnx"
    code, stdout, err = run(capsys, "export", "--checkpoint", model, "--out", onnx_file)
    assert code == 0, err
    from pix2pix_core.export_formats import read_onnx_metadata

    metadata = read_onnx_metadata(onnx_file)
    assert metadata["generator"] == "AtoB" and metadata["imported_from"] == read_header(model)["imported_from"]
    onnx_translator = Translator.load(onnx_file)
    torch_translator = Translator.load(model, device="cpu")
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    fp32 = TrainConfig.from_json(read_header(model)["config"])
    fp32.precision = "fp32"
    exact = Translator(load_generator(model)[0], fp32, "cpu")
    assert (onnx_translator.run_network(x) - exact.run_network(x)).abs().max() < 1e-4
    assert (torch_translator.run_network(x) - exact.run_network(x)).abs().mean() < 0.02  # bf16 on the CPU
    with pytest.raises(CheckpointError, match="AtoB generator only; it is one official CycleGAN generator"):
        Translator.load(onnx_file, direction="BtoA")


@pytest.fixture(scope="module")
def cyclegan_pth(tmp_path_factory):
    return save_official(official_cyclegan(), tmp_path_factory.mktemp("official_cyclegan") / "horse2zebra.pth")


@pytest.mark.parametrize("options,words", [
    (["--netG", "resnet_6blocks"], ["not an official resnet_6blocks generator", "unknown keys: model.16.conv_block",
                                    "9 residual blocks", "try --netG resnet_9blocks"]),
    (["--ngf", 16], ["model.1.weight has shape (8, 3, 7, 7)", "expects (16, 3, 7, 7)", "try --ngf 8"]),
    (["--netG", "unet_256"], ["--netG unet_256", "resnet_9blocks or resnet_6blocks", "--model pix2pix"]),
    (["--task", "facades"], ["--task facades is a pix2pix task", "leave --task out"]),
])
def test_cyclegan_wrong_netG_ngf_or_task_is_one_line(cyclegan_pth, tmp_path, capsys, options, words):
    settings = {"--ngf": 8, **dict(zip(options[::2], options[1::2]))}
    out = tmp_path / "o.safetensors"
    code, _, err = run(capsys, "import-official", cyclegan_pth, "--model", "cyclegan",
                       *[x for item in settings.items() for x in item], "--out", out)
    assert_one_error_line(code, err, *words)
    assert not out.exists()


@pytest.mark.parametrize("argv,words", [
    (["--netG", "unet_256", "--task", "facades"], ["not an official unet_256 generator",
                                                    "looks like a CycleGAN ResNet generator", "--model cyclegan"]),
    (["--netG", "resnet_9blocks", "--task", "aligned"], ["--netG resnet_9blocks", "add --model cyclegan"]),
    ([], ["say which model", "--model cyclegan"]),
    (["--model", "pix2pix", "--netG", "unet_256"], ["a pix2pix import needs --task"]),
    (["--task", "unpaired", "--model", "pix2pix", "--netG", "unet_256"], ["--task unpaired is a CycleGAN's"]),
])
def test_a_cyclegan_file_read_as_pix2pix_is_pointed_to_model_cyclegan(cyclegan_pth, tmp_path, capsys, argv, words):
    code, _, err = run(capsys, "import-official", cyclegan_pth, "--ngf", 8, *argv, "--out", tmp_path / "o.safetensors")
    assert_one_error_line(code, err, *words)


def test_task_unpaired_imports_a_cyclegan_as_train_reads_it(cyclegan_pth, tmp_path, capsys):
    """`train --task unpaired` trains a CycleGAN; `import-official --task unpaired` imports one."""
    out = tmp_path / "h2z.safetensors"
    stdout = import_cyclegan(capsys, cyclegan_pth, out, "--task", "unpaired", "--ngf", 8)
    assert "official CycleGAN resnet_9blocks" in stdout and load_generator(out)[1].model == "cyclegan"


@pytest.mark.parametrize("kind,words", [
    ("unet", ["looks like a pix2pix U-Net generator", "--model pix2pix"]),
    ("dropout", ["unknown keys: model.10.conv_block.6.bias", "missing keys: model.10.conv_block.5.bias",
                 "dropout layer", "--no_dropout"]),
    ("batch_norm", ["unknown keys: model.2.bias, model.2.weight", "missing keys: model.1.bias, model.4.bias",
                    "norm-layer weights (model.2.weight): trained with --norm batch?"]),
    ("zero_padding", ["unknown keys: model.10.conv_block.0.bias", "not an official resnet_9blocks generator"]),
    ("grayscale", ["model.1.weight has shape (8, 1, 7, 7)", "takes 1 input channel(s)", "RGB -> RGB"]),
])
def test_other_official_networks_are_refused_with_a_hint(tmp_path, capsys, kind, words):
    """A U-Net, and the official options no published CycleGAN model uses: dropout in the blocks (trained
    without --no_dropout), batch norm, zero padding, a 1-channel input. Each one line, each named."""
    if kind == "unet":
        net = our_generator()
    else:
        options = {"dropout": {"use_dropout": True}, "batch_norm": {"norm": nn.BatchNorm2d},
                   "zero_padding": {"padding_type": "zero"}, "grayscale": {"input_nc": 1}}[kind]
        if "norm" in options:  # not a functools.partial: the official use_bias test's other branch
            options["norm"] = functools.partial(nn.BatchNorm2d, affine=True)
        net = official_cyclegan(**options)
    pth = save_official(net, tmp_path / "latest_net_G.pth")
    out = tmp_path / "o.safetensors"
    code, _, err = run(capsys, "import-official", pth, "--model", "cyclegan", "--ngf", 8, "--out", out)
    assert_one_error_line(code, err, *words)
    assert not out.exists()


@pytest.mark.parametrize("what", ["object", "in_dict"])
def test_a_hostile_cyclegan_pickle_is_refused_without_running_it(tmp_path, capsys, what):
    marker = tmp_path / MARKER_NAME
    state = official_cyclegan().state_dict()
    torch.save(Payload(marker) if what == "object" else {**state, "model.1.weight": Payload(marker)},
               tmp_path / "horse2zebra.pth")
    out = tmp_path / "o.safetensors"
    code, _, err = run(capsys, "import-official", tmp_path / "horse2zebra.pth", "--model", "cyclegan", "--ngf", 8,
                       "--out", out)
    assert_one_error_line(code, err, "refused", "more than tensors")
    assert not marker.exists() and not out.exists()


# ------------------------------------------------------------------------- a CycleGAN pair (--reverse)
def official_pair(tmp_path, netG="resnet_9blocks", ngf=8, prefix="", old_reverse=False):
    """horse2zebra.pth and zebra2horse.pth as the official code saves them: two generators with other weights (a
    pair mixed up would show); the reverse optionally from the official code of early 2018 (instance norm with
    running statistics)."""
    forward = official_cyclegan(netG, ngf, seed=11)
    reverse = official_cyclegan(netG, ngf, seed=12, norm=official_instance_norm(track_running_stats=old_reverse))
    return (forward, save_official(forward, tmp_path / "horse2zebra.pth", prefix),
            reverse, save_official(reverse, tmp_path / "zebra2horse.pth", prefix))


@pytest.mark.parametrize("netG,prefix,old_reverse", [("resnet_9blocks", "", False),
                                                      ("resnet_6blocks", "module.", True)])
def test_a_cyclegan_pair_imports_both_directions_bit_identically(tmp_path, capsys, netG, prefix, old_reverse):
    """`--reverse zebra2horse.pth` beside horse2zebra.pth: one file holding G (A -> B) and F (B -> A), laid out as
    `export --direction both` writes a trained CycleGAN's; each direction computes exactly what its official
    network does, each file converted with the same rules (a `module.` prefix, stale instance-norm statistics)
    and its provenance kept."""
    forward, forward_pth, reverse, reverse_pth = official_pair(tmp_path, netG, prefix=prefix, old_reverse=old_reverse)
    out = tmp_path / "checkpoints" / "horse_zebra.safetensors"
    stdout = import_cyclegan(capsys, forward_pth, out, "--reverse", reverse_pth, "--netG", netG, "--ngf", 8,
                             "--dtype", "fp32")
    assert (f"official CycleGAN {netG} generators, A -> B from horse2zebra.pth and B -> A from zebra2horse.pth"
            in stdout)
    stale = [k for k in reverse.state_dict() if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert bool(stale) == old_reverse
    assert (f"{len(stale)} instance-norm running statistics of an older PyTorch ignored" in stdout) == old_reverse

    tensors, metadata = read_checkpoint(out)
    assert held_generators(out) == ["AtoB", "BtoA"] and "direction" not in metadata
    assert {key.split(".", 1)[0] for key in tensors} == {"G", "F"}
    both = tmp_path / "exported_both.safetensors"  # what `export --direction both` writes of it: the same file
    code, _, err = run(capsys, "export", "--checkpoint", out, "--out", both, "--direction", "both", "--dtype", "fp32")
    assert code == 0, err
    exported = read_checkpoint(both)[0]
    assert exported.keys() == tensors.keys() and all(torch.equal(exported[k], v) for k, v in tensors.items())

    x = torch.rand(2, 3, 48, 40) * 2 - 1
    current = official_cyclegan(netG, 8, seed=99)  # today's official network with the reverse's weights
    current.load_state_dict({k: v for k, v in reverse.state_dict().items() if k not in stale})
    config32 = TrainConfig.from_json(metadata["config"])
    config32.precision = "fp32"
    for direction, official in (("AtoB", forward), ("BtoA", current)):
        generator, config, _ = load_generator(out, direction=direction)
        channels_last = x[:1].contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            expected = official.eval()(x)
            assert torch.equal(generator.eval()(x), expected), direction
            assert torch.equal(official.train()(x), expected)  # the official test script's train mode: the same
            reference = official.eval().to(memory_format=torch.channels_last)(channels_last)
        assert torch.equal(Translator(generator, config32, "cpu").run_network(x[:1], seed=0), reference), direction
    assert (config.model, config.task, config.netG, config.ngf, config.direction) == \
        ("cyclegan", "unpaired", netG, 8, "AtoB")

    origin = json.loads(metadata["imported_from"])
    assert (origin["file"], origin["model"], origin["netG"], origin["ngf"]) == ("horse2zebra.pth", "cyclegan", netG, 8)
    assert origin["sha256"] == hashlib.sha256(forward_pth.read_bytes()).hexdigest()
    assert origin["reverse"]["file"] == "zebra2horse.pth"
    assert origin["reverse"]["sha256"] == hashlib.sha256(reverse_pth.read_bytes()).hexdigest()
    assert origin["parameters"] == origin["reverse"]["parameters"] == sum(p.numel() for p in forward.parameters())
    assert origin["reverse"].get("ignored_keys", 0) == len(stale) and "ignored_keys" not in origin


def test_a_cyclegan_pair_in_translate_test_onnx_torchscript_and_the_app(tmp_path, capsys):
    """What needs both generators takes the pair: `translate --direction BtoA`, `test` on testA/ and testB/
    (each picture there and back), ONNX and TorchScript exports of either direction, the app's Translate section
    (its model registry) both ways. An ONNX export of one direction is refused the other way with the ordinary
    advice (export it from the pair), not the note for one official file."""
    from PIL import Image

    from demo.state import ModelRegistry
    from pix2pix_core.export_formats import export_model

    _, forward_pth, reverse, reverse_pth = official_pair(tmp_path)
    folder = tmp_path / "checkpoints"
    model = folder / "horse_zebra.safetensors"
    import_cyclegan(capsys, forward_pth, model, "--reverse", reverse_pth, "--ngf", 8)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (40, 30), (120, 90, 60)).save(photos / "zebra.png")

    code, _, err = run(capsys, "translate", "--checkpoint", model, photos, "--out", tmp_path / "horses",
                       "--direction", "BtoA")
    assert code == 0, err
    translated = Image.open(tmp_path / "horses" / "zebra.png")
    assert translated.size == (40, 30)
    pixels = {direction: np.asarray(Translator.load(model, device="cpu", direction=direction).translate(
        photos / "zebra.png")) for direction in ("AtoB", "BtoA")}
    assert np.array_equal(np.asarray(translated), pixels["BtoA"]) and not np.array_equal(pixels["AtoB"],
                                                                                       pixels["BtoA"])

    registry = ModelRegistry([folder], device="cpu")
    assert registry.names("unpaired") == ["horse_zebra"]
    for direction in ("AtoB", "BtoA"):
        assert registry.translator("horse_zebra", "unpaired", direction).translate(photos / "zebra.png").size == \
            (40, 30)

    data = tmp_path / "unpaired"
    for side, colour in (("testA", (150, 110, 70)), ("testB", (30, 30, 30))):
        (data / side).mkdir(parents=True)
        Image.new("RGB", (32, 32), colour).save(data / side / "x.png")
    code, stdout, err = run(capsys, "test", "--checkpoint", model, "--data", data, "--out", tmp_path / "report")
    assert code == 0, err
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert (metrics["count_A"], metrics["count_B"]) == (1, 1)
    assert {"cycle_l1_A", "cycle_l1_B"} <= set(metrics)

    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.inference_mode():
        expected = reverse.eval()(x)
    scripted_file = export_model(model, tmp_path / "zebra2horse.pt", "torchscript", direction="BtoA")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is marked deprecated
        scripted = torch.jit.load(str(scripted_file))
    with torch.no_grad():
        assert (scripted(x) - expected).abs().max() < 0.02  # fp16 weights, the default import

    pytest.importorskip("onnxruntime")
    from pix2pix_core.export_formats import read_onnx_metadata

    onnx_file = tmp_path / "zebra2horse.onnx"
    code, _, err = run(capsys, "export", "--checkpoint", model, "--out", onnx_file, "--direction", "BtoA")
    assert code == 0, err
    onnx_metadata = read_onnx_metadata(onnx_file)
    assert onnx_metadata["generator"] == "BtoA"
    assert onnx_metadata["imported_from"] == read_header(model)["imported_from"]  # both files' provenance
    assert (Translator.load(onnx_file).run_network(x) - expected).abs().max() < 0.02
    with pytest.raises(CheckpointError, match="holds the CycleGAN's BtoA generator only; export the AtoB one"):
        Translator.load(onnx_file, direction="AtoB")


def test_a_safetensors_export_of_an_imported_model_keeps_where_it_came_from(tmp_path, capsys):
    """`export` to safetensors dropped `imported_from` (ONNX and TorchScript kept it): a dtype conversion of an
    official import, or one direction of an imported pair, no longer said which official file it was, and the
    converted single generator's refusals gave the advice for a trained CycleGAN (a training checkpoint nobody has).
    A one-direction export of a pair keeps the pair's provenance and the ordinary advice (export it from the pair)."""
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (32, 32), (120, 90, 60)).save(photos / "horse.png")
    _, forward_pth, _, reverse_pth = official_pair(tmp_path)
    single, pair = tmp_path / "horse2zebra.safetensors", tmp_path / "horse_zebra.safetensors"
    import_cyclegan(capsys, forward_pth, single, "--ngf", 8)
    import_cyclegan(capsys, forward_pth, pair, "--ngf", 8, "--reverse", reverse_pth)

    converted = tmp_path / "horse2zebra_fp32.safetensors"
    code, _, err = run(capsys, "export", "--checkpoint", single, "--out", converted, "--dtype", "fp32")
    assert code == 0, err
    assert read_header(converted)["imported_from"] == read_header(single)["imported_from"]
    code, _, err = run(capsys, "translate", "--checkpoint", converted, photos, "--out", tmp_path / "no",
                       "--direction", "BtoA")
    assert_one_error_line(code, err, "A -> B generator only; it is one official CycleGAN generator (imported from "
                                     "horse2zebra.pth)", "--reverse zebra2horse.pth")
    code, _, err = run(capsys, "export", "--checkpoint", single, "--out", tmp_path / "f.safetensors",
                       "--direction", "BtoA")
    assert_one_error_line(code, err, "holds no B -> A generator weights; it is one official CycleGAN generator")

    one_way = tmp_path / "zebra2horse.safetensors"
    code, _, err = run(capsys, "export", "--checkpoint", pair, "--out", one_way, "--direction", "BtoA")
    assert code == 0, err
    header = read_header(one_way)
    assert header["imported_from"] == read_header(pair)["imported_from"] and header["direction"] == "BtoA"
    assert json.loads(header["imported_from"])["reverse"]["file"] == "zebra2horse.pth"  # whose F the file holds
    code, _, err = run(capsys, "translate", "--checkpoint", one_way, photos, "--out", tmp_path / "no",
                       "--direction", "AtoB")
    assert_one_error_line(code, err, "B -> A generator only; A -> B needs a CycleGAN training checkpoint or an "
                                     "export made with --direction AtoB or both")
    assert "official" not in err
    data = tmp_path / "unpaired"
    for side in ("testA", "testB"):
        (data / side).mkdir(parents=True)
        Image.new("RGB", (32, 32), (10, 200, 10)).save(data / side / "x.png")
    code, _, err = run(capsys, "test", "--checkpoint", one_way, "--data", data, "--out", tmp_path / "report")
    assert_one_error_line(code, err, "B -> A generator only; test needs both", "an export made with --direction both")
    assert "official" not in err


@pytest.fixture(scope="module")
def pair_folder(tmp_path_factory):
    """horse2zebra.pth (ngf 8, 9 blocks) and the reverses a pair is refused with."""
    folder = tmp_path_factory.mktemp("official_pair")
    official_pair(folder)
    (folder / "copy_of_horse2zebra.pth").write_bytes((folder / "horse2zebra.pth").read_bytes())
    save_official(official_cyclegan(ngf=16, seed=1), folder / "wide.pth")
    save_official(official_cyclegan("resnet_6blocks", seed=1), folder / "six_blocks.pth")
    save_official(official_cyclegan(seed=1, input_nc=1), folder / "grey.pth")
    save_official(official_cyclegan(seed=1, use_dropout=True), folder / "dropout.pth")
    return folder


@pytest.mark.parametrize("reverse,options,words", [
    ("wide.pth", [], ["--reverse", "wide.pth: not the other direction of horse2zebra.pth",
                      "it has ngf 16, horse2zebra.pth ngf 8", "same netG, ngf and channels"]),
    ("six_blocks.pth", [], ["not the other direction", "it has netG resnet_6blocks, horse2zebra.pth netG "
                                                      "resnet_9blocks"]),
    ("grey.pth", [], ["not the other direction", "it has channels 1 -> 3, horse2zebra.pth channels 3 -> 3"]),
    ("dropout.pth", [], ["dropout.pth: not an official resnet_9blocks generator", "dropout layer",
                         "--no_dropout"]),  # converted with the first file's rules
    ("horse2zebra.pth", [], ["horse2zebra.pth and --reverse", "are the same file",
                             "the official model named the other way round"]),
    ("copy_of_horse2zebra.pth", [], ["copy_of_horse2zebra.pth hold the same bytes",
                                     "the official model named the other way round"]),
    ("zebra2horse.pth", ["--direction", "BtoA"], ["--direction BtoA with --reverse", "swap the two files"]),
    ("zebra2horse.pth", ["--ngf", 16], ["horse2zebra.pth: model.1.weight has shape (8, 3, 7, 7)", "try --ngf 8"]),
])
def test_a_pair_that_is_no_pair_is_refused_in_one_line(pair_folder, tmp_path, capsys, reverse, options, words):
    """Each refusal one line, nothing written: another architecture (netG, ngf, channels: named as the pair's
    mismatch, not as a hint to change the options the first file needs), a reverse the one-file rules refuse,
    the same file twice (by name or by content), a B -> A first file (swap the files), the first file's own
    mismatch with its usual hint."""
    settings = {"--ngf": 8, **dict(zip(options[::2], options[1::2]))}
    out = tmp_path / "pair.safetensors"
    code, _, err = run(capsys, "import-official", pair_folder / "horse2zebra.pth", "--model", "cyclegan",
                       "--reverse", pair_folder / reverse, *[x for item in settings.items() for x in item],
                       "--out", out)
    assert_one_error_line(code, err, *words)
    assert not out.exists()


@pytest.mark.parametrize("options", [[], ["--netG", "unet_256", "--task", "facades"], ["--model", "pix2pix"]])
def test_reverse_is_a_cyclegan_option(pair_folder, tmp_path, capsys, options):
    """--reverse without --model cyclegan (or --task unpaired) is refused before the questions a pix2pix import
    asks; the library refuses it too, and never overwrites the reverse."""
    out = tmp_path / "pair.safetensors"
    code, _, err = run(capsys, "import-official", pair_folder / "horse2zebra.pth", "--reverse",
                       pair_folder / "zebra2horse.pth", *options, "--ngf", 8, "--out", out)
    assert_one_error_line(code, err, "--reverse takes the other direction of an official CycleGAN model",
                          "add --model cyclegan")
    with pytest.raises(CheckpointError, match="add --model cyclegan"):
        import_official(pair_folder / "horse2zebra.pth", out, reverse=pair_folder / "zebra2horse.pth", ngf=8)
    with pytest.raises(CheckpointError, match="is the file being read"):
        import_official(pair_folder / "horse2zebra.pth", pair_folder / "zebra2horse.pth", model="cyclegan", ngf=8,
                        reverse=pair_folder / "zebra2horse.pth")
    assert not out.exists()
