"""ZooBench's zoo: which architectures, trained on which source domains, with which recipe.

Pure data (no torch): :mod:`zoorank.datasets.zoobench.training` builds and trains what this describes.

The design follows the multi-source zoo of Model Spider (section 5.2) and the heterogeneity of real
zoos (Fennec, figure 2), scaled to a 2-core CPU:

* **ImageNet-derived** (``init="imagenet"``): the real torchvision ImageNet MobileNetV2 (offline weights)
  as it is, plus one full fine-tune of it on each of the 8 source domains -> 9 models.
* **From scratch** (``init="scratch"``): 10 small timm configurations from 9 architecture families
  (resnet at two widths, mobilenetv3, efficientnet, regnet, convnext, vit, mixer, ghostnet, densenet),
  each trained with ``pretrained=False`` on 2 or 3 source domains -> 28 models.

Source domains are dealt to the scratch configurations round-robin over :data:`SOURCE_DOMAINS`, whose
order alternates glyph, natural and synthetic domains, so every family sees different kinds of data and
every domain is learnt by 3 or 4 different families: neither the architecture nor the source domain
alone explains a model's results. All models take the 32x32 RGB images of the domains; the MobileNetV2
family upsamples them to 64 px (bilinear), where the ImageNet features are far better than at 32 px (linear
probe on scikit-learn's digits: 0.92 at 64 px, 0.80 at 32 px, 0.84 for an untrained resnet10t-w24 at 32 px),
as a practitioner would use an ImageNet model on small images; the scratch models work at 32 px.

Measured cost (``sec_per_1000``): seconds for one training epoch of 1000 images at batch size 64
(forward + backward + AdamW step) with ``torch.set_num_threads(1)`` on this project's machine while a
second process used the other core (``training.measure_epoch_seconds`` re-measures it). Two threads
on an idle machine are roughly 1.5x faster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zoorank.errors import InputError

#: The 8 source domains, by the names the ZooBench domain generators use. Order matters: it
#: alternates glyph / natural / synthetic domains so that round-robin dealing spreads each family.
SOURCE_DOMAINS: tuple[str, ...] = (
    "latin_glyphs",
    "animal_silhouettes",
    "cjk_glyphs",
    "textures",
    "handwritten_digits",
    "shapes",
    "indic_glyphs",
    "natural_patches",
)

#: Resolution of the domains' images and of the scratch models (square, RGB).
INPUT_SIZE = 32


@dataclass(frozen=True)
class ArchSpec:
    """One architecture configuration of the zoo.

    Attributes:
        name: short unique name (``resnet10t-w24``); used in model names.
        family: the architecture family (``resnet``, ``vit``, ...).
        library: ``timm`` (``timm.create_model(ref, pretrained=False, **kwargs)``), ``timm-class``
            (``ref`` is a class in ``timm.models``, e.g. ``mlp_mixer.MlpMixer``, built with ``kwargs``) or
            ``torchvision`` (``torchvision.models.<ref>()``).
        ref: the timm model name, timm class path or torchvision builder.
        kwargs: extra constructor arguments as sorted ``(key, value)`` pairs (hashable).
        init: ``scratch`` (random init, seeded) or ``imagenet`` (the offline ImageNet weights).
        input_size: square input resolution.
        sec_per_1000: measured training seconds per epoch per 1000 images (see the module doc).
    """

    name: str
    family: str
    library: str
    ref: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    init: str = "scratch"
    input_size: int = INPUT_SIZE
    sec_per_1000: float = 1.0

    def __post_init__(self) -> None:
        """Validate the fields."""
        if self.library not in ("timm", "timm-class", "torchvision"):
            raise InputError(f"arch {self.name!r}: library must be timm, timm-class or torchvision, "
                             f"got {self.library!r}")
        if self.init not in ("scratch", "imagenet"):
            raise InputError(f"arch {self.name!r}: init must be 'scratch' or 'imagenet', got {self.init!r}")
        if self.init == "imagenet" and (self.library, self.ref) != ("torchvision", "mobilenet_v2"):
            raise InputError(f"arch {self.name!r}: only torchvision mobilenet_v2 has offline ImageNet weights")

    @property
    def options(self) -> dict[str, Any]:
        """``kwargs`` as a dict (tuples inside stay tuples)."""
        return dict(self.kwargs)


def _kw(**kwargs: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(kwargs.items()))


#: The ImageNet MobileNetV2 (torchvision IMAGENET1K_V1, from the offline weights package).
MOBILENET_V2 = ArchSpec("mobilenet_v2", "mobilenetv2", "torchvision", "mobilenet_v2", init="imagenet",
                        input_size=64, sec_per_1000=4.68)

#: The from-scratch configurations: 9 families, resnet at two widths. Params are without the head.
SCRATCH_ARCHS: tuple[ArchSpec, ...] = (
    # 0.70 M params; timm's resnet10t (deep tiered stem, avg-down) with narrow stages.
    ArchSpec("resnet10t-w24", "resnet", "timm", "resnet10t", _kw(channels=(24, 48, 96, 192), stem_width=16),
             sec_per_1000=0.45),
    # 1.27 M
    ArchSpec("resnet10t-w32", "resnet", "timm", "resnet10t", _kw(channels=(32, 64, 128, 256)), sec_per_1000=0.79),
    # 0.58 M
    ArchSpec("mobilenetv3_small_050", "mobilenetv3", "timm", "mobilenetv3_small_050", sec_per_1000=0.87),
    # 0.78 M; TinyNet-E is an EfficientNet scaled down in resolution, width and depth.
    ArchSpec("tinynet_e", "efficientnet", "timm", "tinynet_e", sec_per_1000=1.42),
    # 2.32 M
    ArchSpec("regnetx_002", "regnet", "timm", "regnetx_002", sec_per_1000=1.12),
    # 1.24 M; convnext_atto depths with 0.6x its widths.
    ArchSpec("convnext_atto-w24", "convnext", "timm", "convnext_atto", _kw(dims=(24, 48, 96, 192)),
             sec_per_1000=0.78),
    # 0.31 M; a ViT with 4x4 patches (64 tokens at 32 px), 4 blocks of width 96.
    ArchSpec("vit-p4-d96x4", "vit", "timm", "vit_tiny_patch16_224",
             _kw(img_size=32, patch_size=4, embed_dim=96, depth=4, num_heads=3, mlp_ratio=2.0), sec_per_1000=1.90),
    # 0.31 M; an MLP-Mixer with 4x4 patches, 4 blocks of width 128.
    ArchSpec("mixer-p4-d128x4", "mixer", "timm-class", "mlp_mixer.MlpMixer",
             _kw(img_size=32, patch_size=4, embed_dim=128, num_blocks=4, mlp_ratio=(0.5, 2.0)), sec_per_1000=1.81),
    # 1.32 M (mostly its 1280-d head conv)
    ArchSpec("ghostnet_050", "ghostnet", "timm", "ghostnet_050", sec_per_1000=1.43),
    # 0.18 M; densenet121's design with growth 12 and blocks (4, 6, 8).
    ArchSpec("densenet-g12", "densenet", "timm", "densenet121", _kw(growth_rate=12, block_config=(4, 6, 8)),
             sec_per_1000=0.62),
)

#: How many source domains each scratch configuration is trained on (resnet: 2 widths x 2 domains).
SCRATCH_COPIES: dict[str, int] = {a.name: (2 if a.family == "resnet" else 3) for a in SCRATCH_ARCHS}

ARCHS: dict[str, ArchSpec] = {a.name: a for a in (MOBILENET_V2, *SCRATCH_ARCHS)}

#: Source pre-training recipes (AdamW, linear warm-up over the first 5% of steps, cosine decay to 0,
#: no weight decay on biases and norm weights; batch 64; light augmentation, see ``training``).
PRETRAIN_RECIPES: dict[str, dict[str, Any]] = {
    "scratch": {"epochs": 15, "lr": 2e-3, "weight_decay": 0.05, "batch_size": 64},
    "imagenet": {"epochs": 6, "lr": 5e-4, "weight_decay": 1e-4, "batch_size": 64},
}

#: The fine-tuning ground truth recipe (same for every model and target); the LR is chosen on a validation
#: split (20% of the target's train split, stratified) from ``lr_grid``.
FINETUNE_RECIPE: dict[str, Any] = {
    "epochs": 6, "lr_grid": (3e-4, 1e-3, 3e-3), "weight_decay": 1e-4, "batch_size": 64, "val_fraction": 0.2,
}


@dataclass(frozen=True)
class ZooModel:
    """One model of the zoo: ``source_domain`` is ``"imagenet"`` for the untouched ImageNet MobileNetV2."""

    name: str
    arch: ArchSpec
    source_domain: str
    init: str

    @property
    def needs_pretraining(self) -> bool:
        """False only for the ImageNet model used as it is."""
        return self.source_domain != "imagenet"

    @property
    def recipe(self) -> dict[str, Any]:
        """The source pre-training recipe (see :data:`PRETRAIN_RECIPES`)."""
        return dict(PRETRAIN_RECIPES[self.init])


def zoo(source_domains: tuple[str, ...] | list[str] = SOURCE_DOMAINS) -> list[ZooModel]:
    """The zoo, in a fixed order: the ImageNet MobileNetV2, its fine-tunes, then the scratch models.

    ``source_domains`` (at least 6 distinct names) lets the build use the domain generators' own names;
    scratch configuration ``i`` takes the next ``SCRATCH_COPIES`` domains round-robin.
    """
    domains = list(source_domains)
    if len(domains) < 6 or len(set(domains)) != len(domains) or "imagenet" in domains:
        raise InputError(f"zoo needs at least 6 distinct source domain names (not 'imagenet'), got {domains!r}")
    models = [ZooModel("mobilenet_v2-imagenet", MOBILENET_V2, "imagenet", "imagenet")]
    models += [ZooModel(f"mobilenet_v2-ft-{d}", MOBILENET_V2, d, "imagenet") for d in domains]
    k = 0
    for arch in SCRATCH_ARCHS:
        for _ in range(SCRATCH_COPIES[arch.name]):
            d = domains[k % len(domains)]
            models.append(ZooModel(f"{arch.name}-{d}", arch, d, "scratch"))
            k += 1
    return models


def zoo_rows(models: list[ZooModel], params: dict[str, int]) -> list[dict[str, Any]]:
    """Rows of ``benchmarks/zoobench/zoo.csv`` (``model,architecture,source_domain,init,params``);
    ``params`` maps model names to their measured parameter counts (with their source head)."""
    missing = [m.name for m in models if m.name not in params]
    if missing:
        raise InputError(f"zoo_rows: no parameter count for {len(missing)} models (e.g. {missing[0]!r})")
    return [{"model": m.name, "architecture": m.arch.name, "source_domain": m.source_domain, "init": m.init,
             "params": int(params[m.name])} for m in models]


def estimate_build_seconds(models: list[ZooModel], source_sizes: dict[str, int], target_train_sizes: list[int],
                           *, eval_factor: float = 0.3) -> dict[str, float]:
    """Single-core estimate of the build from the measured ``sec_per_1000``.

    Pre-training: ``epochs * N_source / 1000 * sec_per_1000``. Fine-tuning, per (model, target): one run per
    LR of the grid on the train split less its validation part, ``epochs * 0.8 N_train / 1000 * sec_per_1000``,
    plus evaluation passes counted as ``eval_factor`` of a training epoch over val + test + train features.
    """
    ft = FINETUNE_RECIPE
    pre = 0.0
    for m in models:
        if m.needs_pretraining:
            if m.source_domain not in source_sizes:
                raise InputError(f"estimate_build_seconds: no size for source domain {m.source_domain!r}")
            pre += m.recipe["epochs"] * source_sizes[m.source_domain] / 1000 * m.arch.sec_per_1000
    fine = 0.0
    for m in models:
        for n in target_train_sizes:
            train = (1 - ft["val_fraction"]) * n
            runs = len(ft["lr_grid"]) * ft["epochs"] * train / 1000 * m.arch.sec_per_1000
            evals = eval_factor * (len(ft["lr_grid"]) * 2 * n + n) / 1000 * m.arch.sec_per_1000
            fine += runs + evals
    return {"pretrain": pre, "finetune": fine, "total": pre + fine}


def build_report(source_images: int = 6000) -> dict[str, float]:
    """The build's single-core cost estimate (hours) over the target tasks that generate on this machine, and the
    fp16 size (MB) of the zoo with 10-class source heads: ``python -m zoorank.datasets.zoobench.zoo_design``."""
    from zoorank.datasets.zoobench import tasks as T
    from zoorank.datasets.zoobench.training import build_model, count_params

    models = zoo()
    train_sizes = [len(T.load(name).train) for name in T.available_tasks()]
    est = estimate_build_seconds(models, {m.source_domain: source_images for m in models}, train_sizes)
    fp16_bytes = sum(2 * count_params(build_model(m.arch, 10)) for m in models if m.needs_pretraining)
    return {"models": len(models), "targets": len(train_sizes), **{f"{k}_hours": v / 3600 for k, v in est.items()},
            "fp16_mb": fp16_bytes / 1e6}


if __name__ == "__main__":
    for key, value in build_report().items():
        print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")
