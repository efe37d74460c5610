"""The estimator's layout inside a checkpoint: tensor names, optimiser state, history."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from ..classifier import ClassifierConfig, DomainClassifier
from ..data import ArraySpec
from ..models import Discriminator, Generator, ModelConfig, meta_device
from ..trainer import HISTORY_KEYS, TrainConfig, TrainState, make_optimizers
from .schema import CONFIG_NAME, CheckpointError, decode_classes

_INDEX = re.compile(r"0|[1-9][0-9]{0,6}")
# Tensor name prefixes. "generator" holds the network that samples: the moving average when
# there is one, with the trained weights beside it as "train_generator".
NETWORKS = ("generator", "train_generator", "classifier", "discriminator")
OPTIMIZERS = ("opt_g", "opt_d")
_TORCH_TO_ST = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
_STEP_DTYPES = frozenset({"F32", "F64", "I64"})


class Expected(NamedTuple):
    """A tensor the weights file may hold."""

    shape: tuple[int, ...] | None  # None: 1-D of at most `longest` elements
    dtypes: frozenset[str]
    required: bool
    owner: str  # what it belongs to, for messages
    finite: bool  # floating-point values must be finite
    longest: int = 0


def expected_tensors(document: dict[str, Any]) -> tuple[dict[str, Expected], dict[str, int], int]:
    """What the weights of a validated document must hold.

    Returns (name -> expected tensor, optimizer name -> parameter count, parameters of
    all networks). The networks are built on the meta device: nothing is allocated.
    """
    config = ModelConfig.from_dict(document["model"])
    classifier_doc = document.get("classifier")
    with meta_device():
        generator, discriminator = Generator(config), Discriminator(config)
        classifier = DomainClassifier(ClassifierConfig.from_dict(classifier_doc)) if classifier_doc else None
    nets: list[tuple[str, torch.nn.Module]] = [("generator", generator), ("discriminator", discriminator)]
    if document["training"].get("ema") is not None:
        nets.append(("train_generator", generator))  # the raw weights next to the moving average
    if classifier is not None:
        nets.append(("classifier", classifier))
    expected: dict[str, Expected] = {}
    for owner, net in nets:
        for key, t in net.state_dict().items():
            expected[f"{owner}.{key}"] = Expected(tuple(t.shape), frozenset({_TORCH_TO_ST[t.dtype]}), True, owner,
                                                   t.is_floating_point())
    # The raw generator counts twice: loading allocates it next to the moving average.
    n_parameters = sum(p.numel() for _, net in nets for p in net.parameters())
    counts = {}
    for opt, net in zip(OPTIMIZERS, (generator, discriminator)):
        params = list(net.parameters())
        counts[opt] = len(params)
        for i, p in enumerate(params):
            for moment in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                expected[f"{opt}.state.{i}.{moment}"] = Expected(
                    tuple(p.shape), frozenset({_TORCH_TO_ST[p.dtype]}), False, f"optimizer {opt}", True)
            expected[f"{opt}.state.{i}.step"] = Expected((), _STEP_DTYPES, False, f"optimizer {opt}", True)
    for key in HISTORY_KEYS:
        expected[f"history.{key}"] = Expected(None, frozenset({"F64"}), False, "training history", False,
                                               longest=document["training"]["step"])
    return expected, counts, n_parameters


def check_optimizers(document: dict[str, Any], counts: dict[str, int], names: set[str], config: Path) -> None:
    for opt, n in counts.items():
        meta = document["optimizers"][opt]
        group = meta["param_groups"][0]
        if group["params"] != list(range(n)):
            raise CheckpointError(
                f"Checkpoint file {config} is corrupt: field 'optimizers.{opt}.param_groups[0].params' must list "
                f"the {n} parameters of the network as 0 to {n - 1}."
            )
        scalars = meta.get("scalars", {})
        for idx in scalars:
            if not _INDEX.fullmatch(idx) or int(idx) >= n:
                raise CheckpointError(
                    f"Checkpoint file {config} is corrupt: field 'optimizers.{opt}.scalars.{idx}' is not a parameter "
                    f"index from 0 to {n - 1}."
                )
        needed = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if group.get("amsgrad") else [])
        for i in range(n):
            have = {m for m in needed + ["step"] if f"{opt}.state.{i}.{m}" in names}
            if not have and str(i) not in scalars:
                continue  # a parameter without state: Adam starts it afresh
            missing = [m for m in needed if m not in have]
            if "step" not in have and "step" not in scalars.get(str(i), {}):
                missing.append("step")
            if missing:
                raise CheckpointError(
                    f"Checkpoint weights in {config.parent} do not match the optimizer {opt} described in "
                    f"{CONFIG_NAME}: the state of parameter {i} lacks {', '.join(missing)}."
                )


def optimizer_to_tensors(
    prefix: str, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's state dict into tensors (for safetensors) and JSON metadata."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, param_state in sd["state"].items():
        for name, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.state.{idx}.{name}"] = value
            else:
                scalars.setdefault(str(idx), {})[name] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_tensors(
    prefix: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    head = f"{prefix}.state."
    for key, value in tensors.items():
        if key.startswith(head):
            idx, name = key[len(head) :].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    for idx, values in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(values)
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# --------------------------------------------------------------------------- the estimator


@dataclass
class Snapshot:
    """A fitted :class:`~ganaug.ConditionalDCGAN` as its checkpoint holds it."""

    params: dict[str, Any]  # constructor arguments (JSON values)
    seed: int
    model: ModelConfig
    training: TrainConfig
    state: TrainState
    classes: np.ndarray
    class_counts: np.ndarray
    spec: ArraySpec
    generator: nn.Module  # the trained generator
    generator_ema: nn.Module | None  # its moving average, which samples when present
    discriminator: nn.Module
    classifier: DomainClassifier | None
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer]


def to_checkpoint(snap: Snapshot) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(ganaug.json document without the weights entry, tensors) for :func:`write_checkpoint`."""
    networks = {"generator": snap.generator if snap.generator_ema is None else snap.generator_ema,
                "train_generator": None if snap.generator_ema is None else snap.generator,
                "classifier": snap.classifier, "discriminator": snap.discriminator}
    tensors: dict[str, torch.Tensor] = {}
    for prefix in NETWORKS:
        if networks[prefix] is not None:
            tensors.update({f"{prefix}.{k}": v for k, v in networks[prefix].state_dict().items()})
    optimizers = {}
    for name, opt in zip(OPTIMIZERS, snap.optimizers):
        opt_tensors, optimizers[name] = optimizer_to_tensors(name, opt)
        tensors.update(opt_tensors)
    for key in HISTORY_KEYS:
        tensors[f"history.{key}"] = torch.tensor(snap.state.history[key], dtype=torch.float64)
    document = {
        "params": snap.params,
        "seed": snap.seed,
        "model": snap.model.to_dict(),
        "training": {**snap.training.to_dict(), "epoch": snap.state.epoch, "step": snap.state.step},
        "optimizers": optimizers,
        "classifier": None if snap.classifier is None else snap.classifier.config.to_dict(),
        "data": {
            "classes": snap.classes.tolist(),
            "classes_dtype": snap.classes.dtype.str,
            "class_counts": snap.class_counts.tolist(),
            "spec": snap.spec.to_dict(),
        },
    }
    return document, tensors


def from_checkpoint(document: dict[str, Any], tensors: dict[str, torch.Tensor], *, device: torch.device,
                    where: Path) -> Snapshot:
    """Rebuild the networks, optimisers and history of a document :func:`read_checkpoint` checked."""

    def corrupt(exc: BaseException, what: str = "description") -> CheckpointError:
        return CheckpointError(f"Checkpoint {what} in {where} is corrupt or mismatched: {exc!r}")

    try:
        model = ModelConfig.from_dict(document["model"])
        training = dict(document["training"])
        state = TrainState(epoch=int(training.pop("epoch")), step=int(training.pop("step")))
        config = TrainConfig.from_dict(training)
        data = document["data"]
        classes, spec = decode_classes(data), ArraySpec.from_dict(data["spec"])
        class_counts = np.asarray(data["class_counts"], dtype=np.int64)
        classifier_config = ClassifierConfig.from_dict(document["classifier"]) if document.get("classifier") else None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
        raise corrupt(exc) from exc
    networks = _load_networks(model, config, classifier_config, tensors, where, corrupt)
    generator, generator_ema = networks["generator"], None
    if networks.get("train_generator") is not None:
        generator, generator_ema = networks["train_generator"], generator
    generator, discriminator = generator.to(device).eval(), networks["discriminator"].to(device).eval()
    generator_ema = None if generator_ema is None else generator_ema.to(device).eval()
    classifier = networks.get("classifier")
    try:
        optimizers = make_optimizers(generator, discriminator, config)
        for name, opt in zip(OPTIMIZERS, optimizers):
            optimizer_from_tensors(name, opt, tensors, document["optimizers"][name])
    except (KeyError, ValueError, RuntimeError, TypeError, IndexError) as exc:
        raise corrupt(exc, "optimizer state") from exc
    state.history = {k: tensors[f"history.{k}"].tolist() if f"history.{k}" in tensors else [] for k in HISTORY_KEYS}
    return Snapshot(
        params=dict(document["params"]), seed=int(document["seed"]), model=model, training=config, state=state,
        classes=classes, class_counts=class_counts, spec=spec, generator=generator, generator_ema=generator_ema,
        discriminator=discriminator, classifier=None if classifier is None else classifier.to(device).eval(),
        optimizers=optimizers,
    )


def _load_networks(model: ModelConfig, config: TrainConfig, classifier_config: ClassifierConfig | None,
                   tensors: dict[str, torch.Tensor], where: Path, corrupt: Any) -> dict[str, nn.Module]:
    try:
        # Every parameter and buffer is overwritten by the checkpoint's: build without
        # drawing from (or advancing) the caller's global RNG.
        with torch.random.fork_rng(devices=[]):
            networks: dict[str, nn.Module] = {"generator": Generator(model), "discriminator": Discriminator(model)}
            if classifier_config is not None:
                networks["classifier"] = DomainClassifier(classifier_config)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise corrupt(exc, "model description") from exc
    if config.ema is not None:
        networks["train_generator"] = copy.deepcopy(networks["generator"])
    for prefix, module in networks.items():
        head = f"{prefix}."
        try:
            module.load_state_dict({k[len(head):]: v for k, v in tensors.items() if k.startswith(head)}, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(
                f"Checkpoint weights in {where.parent} do not match the {prefix} described in {CONFIG_NAME}: {exc}"
            ) from exc
    return networks
