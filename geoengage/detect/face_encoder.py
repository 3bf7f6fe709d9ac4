"""dlib's ResNet face encoder run in torch: the weights read from dlib's own model file, the network laid out as dlib
lays it out, so an encoding equals ``dlib.face_recognition_model_v1.compute_face_descriptor``'s (within 1e-6) at
about a seventh of the time on one core (18-22 ms instead of 124-153 ms a face, ``benchmarks/face_encoder_speed.py``:
the ``dlib-bin`` wheel is built without BLAS, torch brings its own).

The file (``dlib_face_recognition_resnet_model_v1.dat`` of ``face-recognition-models``) is read with numpy, never
unpickled: dlib writes each layer as its name, a few integers and its parameters as little-endian float32. The network
(dlib's ``dnn_face_recognition_ex.cpp``): a 7x7 stride-2 convolution with 32 filters, an affine (frozen batch-norm)
layer, ReLU and a 3x3 stride-2 max pool; then 14 residual blocks (two 3x3 convolutions each; a block that halves the
size adds a 2x2 average pool of its input, dlib's ``add_prev`` zero-filling where the two differ in channels or
size); a global average pool and a 128x256 fully connected layer without bias. The input is the 150x150 RGB chip
``dlib.get_face_chip`` cuts (padding 0.25), less dlib's per-channel mean and over 256.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..exceptions import ModelFileError
from .models import model_path

__all__ = ["CHIP_PADDING", "CHIP_SIZE", "DlibResNetEncoder", "face_encoder", "read_dlib_resnet"]

#: Side of the aligned face chip the network takes, and the padding around the face ``dlib.get_face_chip`` adds.
CHIP_SIZE = 150
CHIP_PADDING = 0.25

_LAYER = re.compile(rb"(input_rgb_image_sized|con_4|affine_|max_pool_2|avg_pool_2|fc_2)")


@dataclass(frozen=True)
class _Layer:
    kind: str  # "con", "affine", "max_pool", "avg_pool", "fc"
    params: np.ndarray | None
    settings: tuple[int, ...]  # con: filters, rows, cols, stride y, stride x, padding y, padding x; pools: the same
    # but window rows/cols first and no filters; fc: outputs, inputs


class _Reader:
    """dlib's serialisation: an integer is a control byte (low nibble: how many little-endian bytes follow; 0x80:
    negative), a float a mantissa and an exponent integer, a string its length and bytes, a tensor a version (2), four
    dimensions and float32 values."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def fail(self, what: str) -> ModelFileError:
        return ModelFileError(f"{self.path}: not dlib's face-encoder network ({what}); reinstall "
                              "`face-recognition-models`.")

    def integer(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("the file ends early")
        control = self.data[self.pos]
        size = control & 0x0F
        value = int.from_bytes(self.data[self.pos + 1:self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if control & 0x80 else value

    def real(self) -> float:
        mantissa = self.integer()
        return float(mantissa * 2.0 ** self.integer())

    def tensor(self) -> np.ndarray:
        if self.integer() != 2:
            raise self.fail(f"a tensor of an unknown version at byte {self.pos}")
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        if self.pos + 4 * count > len(self.data):
            raise self.fail("the file ends inside a tensor")
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos).astype(np.float32)
        self.pos += 4 * count
        return values

    def next_layer(self) -> str | None:
        """The next layer name geoengage needs (other layers, ReLU, tags and skips, carry no parameters)."""
        while (match := _LAYER.search(self.data, self.pos)) is not None:
            self.pos = match.end()
            start = match.start()
            if start >= 2 and self.data[start - 2] == 1 and self.data[start - 1] == len(match.group()):
                return match.group().decode()
        return None


def read_dlib_resnet(path: str | Path) -> tuple[np.ndarray, list[_Layer]]:
    """The input's per-channel mean (RGB) and the layers with parameters, input first, of dlib's face-encoder file.

    A file that is not that network (truncated, another model, altered) is a
    :class:`~geoengage.exceptions.ModelFileError` naming it.
    """
    path = Path(path)
    try:
        reader = _Reader(path.read_bytes(), path)
    except OSError as err:
        raise ModelFileError(f"{path}: cannot read dlib's face-encoder network ({err}).") from err
    mean, layers = None, []
    while (name := reader.next_layer()) is not None:
        if name == "input_rgb_image_sized":
            mean = np.array([reader.real() for _ in range(3)], dtype=np.float32)
        elif name == "con_4":
            params = reader.tensor()
            layers.append(_Layer("con", params, tuple(reader.integer() for _ in range(7))))
        elif name == "affine_":
            layers.append(_Layer("affine", reader.tensor(), ()))
        elif name in ("max_pool_2", "avg_pool_2"):
            layers.append(_Layer(name[:-2], None, tuple(reader.integer() for _ in range(6))))
        else:
            settings = (reader.integer(), reader.integer())
            layers.append(_Layer("fc", reader.tensor(), settings))
    kinds = [layer.kind for layer in layers]
    if mean is None or kinds.count("con") != 29 or kinds.count("affine") != 29 or kinds[-1:] != ["fc"] \
            or layers[-1].settings != (128, 256) or layers[-1].params.size != 128 * 256:
        raise reader.fail(f"found {kinds.count('con')} convolutions, {kinds.count('affine')} affine layers, "
                          f"{'a' if mean is not None else 'no'} input layer; expected 29, 29, one")
    return mean, layers


def _add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: the sum over the larger of the two shapes, each tensor zero-filled where it is smaller."""
    if a.shape == b.shape:
        return a + b
    out = a.new_zeros([max(s, t) for s, t in zip(a.shape, b.shape, strict=True)])
    out[:, :a.shape[1], :a.shape[2], :a.shape[3]] += a
    out[:, :b.shape[1], :b.shape[2], :b.shape[3]] += b
    return out


class DlibResNetEncoder:
    """dlib's face encoder (:func:`read_dlib_resnet`'s layers) as torch operations; call it on aligned chips."""

    def __init__(self, mean: np.ndarray, layers: list[_Layer]) -> None:
        self.mean = torch.from_numpy(mean).view(1, 3, 1, 1)
        self.layers: list[tuple[str, tuple[torch.Tensor, ...], tuple[int, ...]]] = []
        channels = 3
        for layer in layers:
            if layer.kind == "con":
                filters, rows, cols = layer.settings[:3]
                size = filters * channels * rows * cols
                weights = torch.from_numpy(layer.params[:size].reshape(filters, channels, rows, cols))
                tensors: tuple[torch.Tensor, ...] = (weights, torch.from_numpy(layer.params[size:]))
                channels = filters
            elif layer.kind == "affine":
                gamma, beta = np.split(layer.params, 2)
                tensors = (torch.from_numpy(gamma).view(1, -1, 1, 1), torch.from_numpy(beta).view(1, -1, 1, 1))
            elif layer.kind == "fc":
                tensors = (torch.from_numpy(layer.params.reshape(layer.settings[1], layer.settings[0])),)
            else:
                tensors = ()
            self.layers.append((layer.kind, tensors, layer.settings))

    def _convolve(self, x: torch.Tensor, index: int) -> torch.Tensor:
        _, (weights, bias), (_, _, _, stride_y, stride_x, pad_y, pad_x) = self.layers[index]
        return F.conv2d(x, weights, bias, stride=(stride_y, stride_x), padding=(pad_y, pad_x))

    def _affine(self, x: torch.Tensor, index: int) -> torch.Tensor:
        gamma, beta = self.layers[index][1]
        return x * gamma + beta

    @torch.inference_mode()
    def __call__(self, chips: np.ndarray) -> np.ndarray:
        """128-d encodings (n, 128), float64, of ``chips``: (n, 150, 150, 3) uint8 RGB from ``dlib.get_face_chip``."""
        x = (torch.from_numpy(np.ascontiguousarray(chips)).permute(0, 3, 1, 2).float() - self.mean) / 256.0
        x = F.relu(self._affine(self._convolve(x, 0), 1))
        rows, cols, stride_y, stride_x, _, _ = self.layers[2][2]
        x = F.max_pool2d(x, (rows, cols), (stride_y, stride_x))
        i = 3
        while self.layers[i][0] == "con":  # a residual block: con, affine, con, affine [, avg_pool]
            shortcut = x
            y = F.relu(self._affine(self._convolve(x, i), i + 1))
            y = self._affine(self._convolve(y, i + 2), i + 3)
            i += 4
            if self.layers[i][0] == "avg_pool" and self.layers[i][2][0] > 0:  # the block halves the size
                rows, cols, stride_y, stride_x, _, _ = self.layers[i][2]
                shortcut = F.avg_pool2d(shortcut, (rows, cols), (stride_y, stride_x))
                i += 1
            x = F.relu(_add_prev(y, shortcut))
        x = x.mean(dim=(2, 3))  # dlib's avg_pool_everything (a window of 0 x 0)
        return (x @ self.layers[i + 1][1][0]).double().numpy()


@functools.cache
def face_encoder() -> DlibResNetEncoder:
    """The encoder of ``face-recognition-models``' file, read once."""
    return DlibResNetEncoder(*read_dlib_resnet(model_path("face_encoder")))
