"""Stage 2: detection backends.

``load_detector(weights, cfg)`` picks the backend by suffix:

* ``.pt``   -> :class:`UltralyticsDetector` (ultralytics/torch, imported lazily)
* ``.onnx`` -> :class:`OnnxDetector` (onnxruntime + numpy + cv2 only; it never imports torch or ultralytics,
  which would slow ONNX Runtime down about 3x in the same process)

Both return, per image, ``(xyxy (k,4) float64, conf (k,) float64, class_id (k,) object 'D00'..'D40')`` in
original-image pixels. The model runs at the lowest per-class threshold, then each class's own threshold
(``cfg.classes[*].threshold``) is applied, or one ``conf`` override for all classes.

Batches are grouped by image shape, so a batch gives the same boxes as one image at a time (ultralytics pads a
batch of mixed shapes to a full square; we never do).
"""

from __future__ import annotations

import ast
import logging
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Hashable, Iterable, Iterator, Sequence, TypeVar

import cv2
import numpy as np

from . import CLASS_IDS
from .config import DEFAULT_WEIGHTS_ONNX, DEFAULT_WEIGHTS_PT, Config
from .errors import ModelError

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
Prediction = tuple[np.ndarray, np.ndarray, np.ndarray]  # xyxy (k,4) float64, conf (k,), class_id (k,) object

STRIDE = 32
PAD_VALUE = 114
MAX_WH = 7680  # class offset for class-aware NMS (as ultralytics)
MAX_NMS = 30000  # at most this many candidates enter NMS (as ultralytics)


# ----------------------------------------------------------------------------------------------------------------
# weights


def default_weights() -> Path:
    """The shipped model: ``weights/rdd-yolo.onnx`` if present, else ``weights/rdd-yolo.pt``."""
    for p in (DEFAULT_WEIGHTS_ONNX, DEFAULT_WEIGHTS_PT):
        if p.is_file():
            return p
    raise ModelError(
        f"no model found (looked for {DEFAULT_WEIGHTS_ONNX.name} and {DEFAULT_WEIGHTS_PT.name}); pass --weights "
        "PATH to a .pt or .onnx detector",
        DEFAULT_WEIGHTS_ONNX.parent,
    )


def resolve_weights(cfg: Config, weights: str | Path | None = None) -> Path:
    """``weights`` if given, else ``cfg.detect.weights``, else :func:`default_weights`; ModelError when missing."""
    if weights:
        path, src = Path(weights), "--weights"
    elif cfg.detect.weights:
        path, src = Path(cfg.detect.weights), "detect.weights"
    else:
        path, src = default_weights(), "the shipped model"
    if not path.is_file():
        raise ModelError(f"weights file not found ({src})", path)
    return path


def class_names_lookup(cfg: Config) -> dict[str, str]:
    """The configured English (lower case) and Japanese class names -> our class ids, as :func:`map_class_names`
    (a data.yaml's ``names``) and Pascal VOC label files (each object's ``<name>``) accept them."""
    by_name = {cfg.classes[c].name_en.lower(): c for c in CLASS_IDS}
    by_name.update({cfg.classes[c].name_ja: c for c in CLASS_IDS if cfg.classes[c].name_ja})
    return by_name


def map_class_names(names: dict[int, str] | Sequence[str], cfg: Config | None = None, where: Any = None) -> list[str]:
    """Map a model's class names (index -> name) to our class ids, index-aligned.

    Accepts the ids themselves (any order), the configured English or Japanese names (any order), or placeholder
    names (``'0'``, ``'class0'``) for a 4-class model, which are taken in data.yaml order with a warning.
    """
    if not isinstance(names, dict):
        names = dict(enumerate(names))
    try:
        idx = sorted(int(i) for i in names)
    except (TypeError, ValueError):
        raise ModelError(f"model class names are not indexed by integers: {names!r:.80}", where) from None
    if idx != list(range(len(CLASS_IDS))):
        raise ModelError(
            f"model has {len(idx)} classes, expected {len(CLASS_IDS)} ({', '.join(CLASS_IDS)})", where
        )
    raw = [str(names[i] if i in names else names[str(i)]).strip() for i in idx]  # type: ignore[index]
    if set(raw) == set(CLASS_IDS):
        return raw
    if cfg is not None:
        by_name = class_names_lookup(cfg)
        mapped = [by_name.get(n.lower(), by_name.get(n)) for n in raw]
        if None not in mapped and len(set(mapped)) == len(CLASS_IDS):
            return mapped  # type: ignore[return-value]
    if all(n in (str(i), f"class{i}") for i, n in enumerate(raw)):
        log.warning(
            "%s: model class names %s are placeholders; assuming the data.yaml order %s",
            where or "model", raw, ", ".join(CLASS_IDS),
        )
        return list(CLASS_IDS)
    raise ModelError(f"model classes {raw} are not the road-damage classes {list(CLASS_IDS)}", where)


# ----------------------------------------------------------------------------------------------------------------
# pure numpy pre/post-processing (identical to ultralytics' LetterBox, non_max_suppression, scale_boxes)


def letterbox(img: np.ndarray, new_shape: tuple[int, int], auto: bool) -> np.ndarray:
    """Resize keeping aspect and pad with gray 114, centered (ultralytics LetterBox, scaleup=True)."""
    h0, w0 = img.shape[:2]
    r = min(new_shape[0] / h0, new_shape[1] / w0)
    new_unpad = max(round(w0 * r), 1), max(round(h0 * r), 1)
    dw, dh = new_shape[1] - new_unpad[0], new_shape[0] - new_unpad[1]
    if auto:
        dw, dh = dw % STRIDE, dh % STRIDE
    dw /= 2
    dh /= 2
    if (w0, h0) != new_unpad:
        img = cv2.resize(img, new_unpad, interpolation=cv2.INTER_LINEAR)
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    if top or bottom or left or right:
        img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    return img


def scale_boxes(img1_shape: tuple[int, int], boxes: np.ndarray, img0_shape: tuple[int, ...]) -> np.ndarray:
    """Boxes from the letterboxed shape back to the original image, clipped (in place)."""
    gain = min(img1_shape[0] / img0_shape[0], img1_shape[1] / img0_shape[1])
    new_h, new_w = (max(round(x * gain), 1) for x in img0_shape[:2])
    gain_y, gain_x = new_h / img0_shape[0], new_w / img0_shape[1]
    pad_x = round((img1_shape[1] - new_w) / 2 - 0.1)
    pad_y = round((img1_shape[0] - new_h) / 2 - 0.1)
    boxes[:, [0, 2]] -= pad_x
    boxes[:, [1, 3]] -= pad_y
    boxes[:, [0, 2]] /= gain_x
    boxes[:, [1, 3]] /= gain_y
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, img0_shape[1])
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, img0_shape[0])
    return boxes


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float, max_keep: int) -> np.ndarray:
    """Greedy NMS (torchvision semantics: suppress IoU > thr); stops once ``max_keep`` boxes are kept."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    keep: list[int] = []
    while order.size and len(keep) < max_keep:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        if not rest.size:
            break
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter + 1e-12)
        order = rest[iou <= iou_thr]
    return np.asarray(keep, dtype=np.int64)


def decode_yolo(pred: np.ndarray, conf_thr: float, iou_thr: float, max_det: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image of a YOLOv8-style head output ``(4+nc, N)`` (xywh + class scores) -> xyxy, conf, class index."""
    scores = pred[4:]
    cls = scores.argmax(0)
    conf = scores[cls, np.arange(scores.shape[1])]
    m = conf > conf_thr
    if not m.any():
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64)
    xywh = pred[:4, m].T.astype(np.float64)
    conf, cls = conf[m].astype(np.float64), cls[m]
    if conf.size > MAX_NMS:
        top = np.argsort(-conf, kind="stable")[:MAX_NMS]
        xywh, conf, cls = xywh[top], conf[top], cls[top]
    xyxy = np.empty_like(xywh)
    xyxy[:, :2] = xywh[:, :2] - xywh[:, 2:] / 2
    xyxy[:, 2:] = xywh[:, :2] + xywh[:, 2:] / 2
    keep = nms(xyxy + (cls[:, None] * MAX_WH), conf, iou_thr, max_det)
    return xyxy[keep], conf[keep], cls[keep]


def decode_end2end(pred: np.ndarray, conf_thr: float, max_det: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image of an end-to-end (NMS-free) output ``(N, 6)``: x1 y1 x2 y2 conf cls."""
    m = pred[:, 4] > conf_thr
    p = pred[m][:max_det].astype(np.float64)
    return p[:, :4].copy(), p[:, 4].copy(), p[:, 5].astype(np.int64)


# ----------------------------------------------------------------------------------------------------------------
# detectors


class Detector(ABC):
    """A loaded model. ``names[i]`` is the class id (D00..D40) of model class index ``i``."""

    backend = "?"

    def __init__(self, weights: Path, cfg: Config, conf: float | None = None):
        self.weights = Path(weights)
        self.cfg = cfg
        self.iou = cfg.detect.iou
        self.max_det = cfg.detect.max_det
        self.imgsz = cfg.detect.imgsz
        if conf is not None:
            self.thresholds = {c: float(conf) for c in CLASS_IDS}
        else:
            self.thresholds = {c: float(cfg.classes[c].threshold) for c in CLASS_IDS}
        self.names: list[str] = list(CLASS_IDS)

    @property
    def model_conf(self) -> float:
        """The confidence the model runs at: the lowest per-class threshold."""
        return min(self.thresholds.values())

    def predict(self, images: Sequence[np.ndarray]) -> list[Prediction]:
        """Detect on BGR images; per-class thresholds applied."""
        out = []
        thr = np.array([self.thresholds[n] for n in self.names])
        for xyxy, conf, cls in self.predict_raw(images, self.model_conf, self.max_det):
            keep = conf >= thr[cls] if cls.size else np.zeros(0, dtype=bool)
            out.append(self._finish(xyxy[keep], conf[keep], cls[keep]))
        return out

    def predict_all(self, images: Sequence[np.ndarray], conf: float, max_det: int | None = None) -> list[Prediction]:
        """Detect at one confidence for every class (no per-class thresholds), e.g. 0.001 for evaluation."""
        return [self._finish(*r) for r in self.predict_raw(images, conf, max_det or self.max_det)]

    def _finish(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> Prediction:
        names = np.array(self.names, dtype=object)
        return (
            np.asarray(xyxy, dtype=np.float64).reshape(-1, 4),
            np.asarray(conf, dtype=np.float64).reshape(-1),
            names[np.asarray(cls, dtype=np.int64)] if len(cls) else np.array([], dtype=object),
        )

    def predict_raw(self, images: Sequence[np.ndarray], conf: float, max_det: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Boxes, confidences and model class indices per image, images grouped by shape."""
        results: list[Any] = [None] * len(images)
        groups: dict[tuple, list[int]] = {}
        for i, im in enumerate(images):
            if not isinstance(im, np.ndarray) or im.ndim != 3 or im.shape[2] != 3:
                raise ValueError(f"image {i}: expected an HxWx3 BGR array, got {getattr(im, 'shape', type(im))}")
            groups.setdefault(im.shape, []).append(i)
        for idx in groups.values():
            for i, r in zip(idx, self._predict_group([images[i] for i in idx], conf, max_det)):
                results[i] = r
        return results

    @abstractmethod
    def _predict_group(self, images: list[np.ndarray], conf: float, max_det: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Images all of one shape -> (xyxy, conf, class index) each."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.weights}, imgsz={self.imgsz})"


class UltralyticsDetector(Detector):
    backend = "pt"

    def __init__(self, weights: Path, cfg: Config, conf: float | None = None):
        super().__init__(weights, cfg, conf)
        os.environ.setdefault("YOLO_OFFLINE", "1")
        # OpenMP threads sleep instead of spinning at barriers (read when torch loads): with another busy process
        # or our decode threads on the other cores, spinning made 2-thread inference 2-5x slower than 1 thread
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        from .extras import install_command, missing_modules

        missing = missing_modules()
        if missing:
            onnx = weights.with_suffix(".onnx")
            use = (f"run its ONNX twin instead (--weights {onnx} or detect.weights)" if onnx.is_file() else
                   "run an .onnx model instead (patrol train exports one beside best.pt)")
            raise ModelError(f"a .pt model needs the optional torch extra (missing here: {', '.join(missing)}): {use}, "
                             f"or install it with: {install_command()}", weights)
        from ultralytics import YOLO
        try:
            self.model = YOLO(str(weights), task="detect")
        except Exception as e:  # noqa: BLE001 - anything unpickling/building the model
            raise ModelError(f"cannot load weights: {type(e).__name__}: {e}", weights) from None
        if getattr(self.model, "task", "detect") != "detect":
            raise ModelError(f"not a detection model (task {self.model.task!r})", weights)
        self.names = map_class_names(self.model.names, cfg, weights)
        self.device = cfg.detect.device
        self._use_all_cores()

    @staticmethod
    def _use_all_cores() -> None:
        import torch

        n = os.cpu_count() or 1
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)

    def _predict_group(self, images, conf, max_det):
        res = self.model.predict(
            list(images), imgsz=self.imgsz, conf=conf, iou=self.iou, max_det=max_det, device=self.device,
            verbose=False, save=False,
        )
        self._use_all_cores()  # predictor setup may reset it
        out = []
        for r in res:
            b = r.boxes
            out.append((b.xyxy.cpu().numpy().astype(np.float64), b.conf.cpu().numpy().astype(np.float64),
                        b.cls.cpu().numpy().astype(np.int64)))
        return out


class OnnxDetector(Detector):
    backend = "onnx"

    def __init__(self, weights: Path, cfg: Config, conf: float | None = None):
        super().__init__(weights, cfg, conf)
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ModelError(f"onnxruntime is not installed ({e})", weights) from None
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = os.cpu_count() or 1
        # no busy-wait between ops: with image decoding (or anything else) on the other cores, spinning threads
        # made inference ~1.5x slower here; on an idle machine the cost is small
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if cfg.detect.device not in ("cpu", "") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(weights), sess_options=so, providers=providers)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises several types for bad files
            raise ModelError(f"cannot load ONNX model: {' '.join(str(e).split())[:200]}", weights) from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = list(inp.shape)
        if len(shape) != 4:
            raise ModelError(f"unexpected model input shape {shape}, expected (batch, 3, H, W)", weights)
        self.dynamic_batch = not isinstance(shape[0], int)
        self.dynamic_hw = not (isinstance(shape[2], int) and isinstance(shape[3], int))
        meta = self.session.get_modelmeta().custom_metadata_map
        self.end2end = str(meta.get("end2end", "False")).lower() == "true"
        if not self.dynamic_hw:
            static = (int(shape[2]), int(shape[3]))
            if static != (self.imgsz, self.imgsz):
                log.warning("%s: model input is fixed at %s; ignoring detect.imgsz=%d", weights, static, self.imgsz)
            self.shape = static
        else:
            self.shape = (self.imgsz, self.imgsz)
        names: Any = meta.get("names")
        if names is None:
            nc = self.session.get_outputs()[0].shape[1]
            if not isinstance(nc, int) or nc - 4 != len(CLASS_IDS):
                raise ModelError("ONNX model has no class names in its metadata and not 4 classes", weights)
            names = {i: str(i) for i in range(len(CLASS_IDS))}
        else:
            try:
                names = ast.literal_eval(names)
            except (ValueError, SyntaxError):
                raise ModelError(f"cannot parse class names in ONNX metadata: {names[:80]!r}", weights) from None
        self.names = map_class_names(names, cfg, weights)

    def _preprocess(self, images: list[np.ndarray]) -> np.ndarray:
        lb = [letterbox(im, self.shape, auto=self.dynamic_hw) for im in images]
        return cv2.dnn.blobFromImages(lb, scalefactor=1 / 255.0, swapRB=True, crop=False)  # NCHW float32 RGB

    def _predict_group(self, images, conf, max_det):
        blob = self._preprocess(images)
        if self.dynamic_batch or len(images) == 1:
            outs = [self.session.run(None, {self.input_name: blob})[0]]
        else:
            outs = [self.session.run(None, {self.input_name: blob[i : i + 1]})[0] for i in range(len(images))]
        preds = np.concatenate(outs, 0)
        res = []
        for im, p in zip(images, preds):
            if self.end2end:
                xyxy, c, k = decode_end2end(p, conf, max_det)
            else:
                xyxy, c, k = decode_yolo(p, conf, self.iou, max_det)
            scale_boxes(blob.shape[2:], xyxy, im.shape)
            res.append((xyxy, c, k))
        return res


def looks_like_weights(path: str | Path) -> bool:
    """Whether the file begins as a model of its suffix does — an ONNX ModelProto (its first field, ir_version: byte
    0x08), a .pt zip archive (torch.save) or pickle — read without loading it: a cheap check for messages about a
    model (load_detector says what is wrong with one that is not)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":
        return head[:1] == b"\x08"
    return suffix == ".pt" and (head == b"PK\x03\x04" or head[:1] == b"\x80")


def load_detector(weights: str | Path, cfg: Config, conf: float | None = None) -> Detector:
    """Load a detector by file suffix. Missing, corrupt or wrong-class weights raise ModelError."""
    weights = Path(weights)
    if conf is not None and not 0.0 <= conf <= 1.0:
        raise ModelError(f"confidence must be within 0..1, got {conf}", weights)
    suffix = weights.suffix.lower()
    if suffix not in (".pt", ".onnx"):
        raise ModelError(f"unsupported weights format {weights.suffix or '(none)'!r}; expected .pt or .onnx", weights)
    if not weights.is_file():
        raise ModelError("weights file not found", weights)
    if weights.stat().st_size == 0:
        raise ModelError("weights file is empty", weights)
    cls = UltralyticsDetector if suffix == ".pt" else OnnxDetector
    return cls(weights, cfg, conf)


# ----------------------------------------------------------------------------------------------------------------
# batching


def detect_images(items: Iterable[tuple[K, np.ndarray]], detector: Detector, batch: int) -> Iterator[tuple[K, np.ndarray, np.ndarray, np.ndarray]]:
    """Run ``detector.predict`` over ``(key, image)`` pairs in batches; yields ``(key, xyxy, conf, class_id)`` in order."""
    batch = max(1, int(batch))
    keys: list[K] = []
    ims: list[np.ndarray] = []

    def flush():
        for k, (xyxy, conf, cls) in zip(keys, detector.predict(ims)):
            yield k, xyxy, conf, cls
        keys.clear()
        ims.clear()

    for key, im in items:
        keys.append(key)
        ims.append(im)
        if len(ims) >= batch:
            yield from flush()
    if ims:
        yield from flush()
