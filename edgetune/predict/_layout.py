"""Which ops run outside a CPU runtime's blocked layout, so that a kernel next to one pays a conversion.

ONNX Runtime rewrites convolutions, pools and the elementwise ops between them into its NCHWc
layout (MLAS: channels in blocks of 16 floats with AVX-512F, 8 with AVX2) and inserts a
``ReorderInput``/``ReorderOutput`` wherever the next op cannot run blocked. Which ops can, read
from the optimized graphs of ONNX Runtime 1.2x on an AVX-512 CPU:

- a convolution (its output channels padded to the block) and a depthwise one: always;
- a grouped convolution: when each group's input and output channels fill whole blocks;
- max/average/global pooling: when the channels fill whole blocks;
- a concat: when every input's channels fill whole blocks and no input is itself unblocked;
- a resize: when it upsamples by a whole factor (``Upsample`` runs blocked at any channel count);
- a same-shaped Mul, Add and the activations: always (they follow their inputs);
- a pad: when only convolutions read it (ONNX Runtime folds it into their padding);
- a slice, a transpose or channel shuffle, a softmax, an FC layer, a flatten and a broadcast
  (squeeze-excite) scale: never.

A profile records the block it was fitted with (``ProfileHardware.layout_block``); 0, the profiles
taken before, keeps the first rule: every concat, pad, resize, Mul and grouped convolution counts
as unblocked and pools never do.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from edgetune.predict._graph import Graph, Op

# what the first rule counted as unblocked (profiles with no recorded block were fitted with it)
_FIRST_RULE_KINDS = frozenset({"slice", "transpose", "concat", "pad", "resize", "softmax", "fc", "flatten", "scale",
                               "mul"})
_NEVER_BLOCKED = frozenset({"slice", "transpose", "softmax", "fc", "flatten", "scale"})
_POOL_KINDS = frozenset({"maxpool", "avgpool", "gap"})


def layout_block(runtime: str, isa: Sequence[str]) -> int:
    """The channel block of ``runtime``'s blocked layout on a CPU with ``isa`` (0: none or unknown)."""
    if runtime != "onnxruntime":
        return 0
    features = set(isa)
    if "avx512f" in features:
        return 16
    return 8 if "avx2" in features else 0


class LayoutRules:
    """``unblocked(op)`` for the ops of one graph under a runtime's channel block (0: the first rule)."""

    def __init__(self, graph: Graph, block: int, consumers: Mapping[str, Sequence[str]]) -> None:
        self.block = block
        self.by_name = {op.name: op for op in graph.ops}
        self.consumers = consumers
        self.input_channels = graph.input_shape[1]

    def _channels(self, name: str) -> int:
        op = self.by_name.get(name)
        return op.cout if op is not None else self.input_channels

    def _fills(self, channels: int) -> bool:
        return channels % self.block == 0

    def unblocked(self, op: Op) -> bool:
        """Whether ``op`` runs outside the blocked layout (its neighbours convert to and from it)."""
        grouped = op.kind == "conv" and 1 < op.groups < op.cin
        if not self.block:
            return op.kind in _FIRST_RULE_KINDS or grouped
        if op.kind in _NEVER_BLOCKED:
            return True
        if grouped:
            return not (self._fills(op.cin // op.groups) and self._fills(op.cout // op.groups))
        if op.kind in _POOL_KINDS:
            return not self._fills(op.cin)
        if op.kind == "concat":
            return not all(self._fills(self._channels(i)) for i in op.inputs) or any(
                i in self.by_name and self.by_name[i].kind in _NEVER_BLOCKED for i in op.inputs)
        if op.kind == "resize":
            return not (0 < op.hin <= op.hout and 0 < op.win <= op.wout and op.hout % op.hin == 0 and op.wout % op.win == 0)
        if op.kind == "pad":
            readers = self.consumers.get(op.name, ())
            return not readers or any(self.by_name[c].kind not in ("conv", "dwconv") for c in readers)
        return False
