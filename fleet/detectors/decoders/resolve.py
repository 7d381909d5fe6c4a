"""Which family reads a model: ``family:`` checked against the model's outputs, or chosen from
them for ``auto``, as a :class:`Decoder` bound to the model; a SettingError otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fleet.detectors.decoders.base import Candidates, Family, Fit, Outputs
from fleet.detectors.decoders.detr import DETR
from fleet.detectors.decoders.nanodet import NANODET
from fleet.detectors.decoders.yolo import NMS, YOLOV5, YOLOV8, YOLOX
from fleet.errors import SettingError

FAMILIES: dict[str, Family] = {f.name: f for f in (YOLOV5, YOLOV8, NMS, YOLOX, DETR, NANODET)}


@dataclass(frozen=True)
class Decoder:
    """A family bound to one model: the outputs it reads and the model's input size."""

    family: Family
    picks: tuple[int, ...]  # indices into the model's outputs, in the order the family takes
    size: tuple[int, int]  # the model input's (width, height)

    @property
    def name(self) -> str:
        return self.family.name

    @property
    def needs_nms(self) -> bool:
        """True: merge overlapping boxes (:func:`suppress`); False: the model did (:func:`best`)."""
        return self.family.needs_nms

    def __call__(self, outputs: Sequence[np.ndarray], min_score: float) -> Candidates:
        """Candidates from all the model's outputs for one image (batch dimension removed)."""
        return self.family.decode([outputs[i] for i in self.picks], self.size, min_score)


def _agrees(fit: Fit, known_classes: int | None) -> bool:
    return known_classes is None or fit.classes is None or fit.classes == known_classes


def _confirmed(fit: Fit, known_classes: int | None) -> bool:
    """Whether ``auto`` may take the fit: its shape says it, or the class names do."""
    return fit.sure or (fit.classes is not None and fit.classes == known_classes)


def resolve_family(family: str, outputs: Outputs) -> Decoder:
    """``family`` checked against the model's outputs (``auto`` chosen from them), or a
    SettingError that says what the outputs are and which family fits them."""
    fits = {name: fit for name, f in FAMILIES.items() if (fit := f.fit(outputs)) is not None}
    agreeing = {name: fit for name, fit in fits.items() if _agrees(fit, outputs.known_classes)}
    if family == "auto":
        chosen = _auto(agreeing, outputs)
    elif family in agreeing:
        chosen = family
    else:
        raise _misfit(family, fits, list(agreeing), outputs)
    return Decoder(FAMILIES[chosen], agreeing[chosen].picks, outputs.size)


def _auto(agreeing: dict[str, Fit], outputs: Outputs) -> str:
    names = outputs.known_classes
    sure = [name for name, fit in agreeing.items() if _confirmed(fit, names)]
    if len(sure) == 1:
        return sure[0]
    seen = f"{outputs.seen()}{f' with {names} class names' if names is not None else ''}"
    if len(sure) > 1:
        raise SettingError("family", f"auto cannot tell: {outputs.seen()}, which fits "
                           f"{' and '.join(sure)}; set family: to the one it is")
    if agreeing:  # readings the shape alone does not say: one of several outputs, or detr's one
        labels = " or give labels: (the number of class names decides)" if names is None else ""
        raise SettingError("family", f"auto cannot tell: {seen} could be read as "
                           f"{' or '.join(agreeing)}, but the shape alone does not say so; set "
                           f"family: to the one it is{labels}")
    layouts = "; ".join(f"{f.name} {f.layout}" for f in FAMILIES.values())
    raise SettingError("family", f"auto: {seen}, which fits no family ({layouts})")


def _misfit(family: str, fits: dict[str, Fit], agreeing: list[str],
            outputs: Outputs) -> SettingError:
    hint = (f"; it fits {' or '.join(agreeing)}: set family: {agreeing[0]} or auto"
            if agreeing else "")
    fit = fits.get(family)
    if fit is not None:  # the shape fits, the number of classes does not
        plural = "s" if len(fit.picks) > 1 else ""
        advice = hint or "; check the model and its labels"
        return SettingError("family", f"{family} reads {fit.classes} classes from the "
                            f"output{plural} {outputs.listed(fit.picks)}, but there are "
                            f"{outputs.known_classes} class names{advice}")
    return SettingError("family", f"{family} expects {FAMILIES[family].layout}, but "
                        f"{outputs.seen()}{hint}")
