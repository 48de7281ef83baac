"""Kernels: which ops a runtime runs as one, detected by measuring and applied to any graph.

A runtime fuses an elementwise op into the op before it (conv+bn+relu, add+relu, ...). The
profiler finds out which pairs fuse the way nn-Meter does: time op A alone, op B alone and
A->B together; when the pair costs clearly less than the two apart (B adds under half its own
cost), B rides on A's kernel; where the runtime has a per-node profiler, the nodes it ran overrule
the clock (``detect_fusion``). The rules are stored per target and runtime and used to split every
graph into kernels before prediction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Sequence

from edgetune.predict._graph import ELEMENTWISE_KINDS, Graph, GraphBuilder, Op, fold_swish

# (head kind, follower kind) pairs worth testing: the follower is elementwise.
HEADS = ("conv", "dwconv", "fc", "add", "bn")
FOLLOWERS = ("bn", "relu", "relu6", "hswish", "sigmoid", "add")
CANDIDATE_PAIRS = tuple((h, f) for h in HEADS for f in FOLLOWERS if not (h == f == "bn") and not (h == "fc" and f in ("bn", "add"))
                        and not (h == "add" and f in ("bn", "add")))


@dataclass(frozen=True)
class FusionRules:
    """Pairs (head kind, follower kind): the follower runs inside the head's kernel."""

    pairs: frozenset[tuple[str, str]] = frozenset()
    evidence: tuple[dict, ...] = ()

    def fuses(self, head: str, follower: str) -> bool:
        return (head, follower) in self.pairs

    def to_dict(self) -> dict:
        return {"fused": sorted([list(p) for p in self.pairs]), "evidence": list(self.evidence)}

    @classmethod
    def from_dict(cls, data: dict) -> "FusionRules":
        return cls(frozenset(tuple(p) for p in data.get("fused", [])), tuple(data.get("evidence", [])))  # type: ignore[misc]


@dataclass
class Kernel:
    """Ops run as one kernel: a head op and the elementwise ops fused into it."""

    head: Op
    followers: list[Op] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "+".join([self.head.kind] + [op.kind for op in self.followers])

    @property
    def tail(self) -> Op:
        return self.followers[-1] if self.followers else self.head

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(op.name for op in [self.head, *self.followers])

    def has(self, kind: str) -> bool:
        return any(op.kind == kind for op in self.followers)


def split_kernels(graph: Graph, rules: FusionRules) -> list[Kernel]:
    """Group ``graph``'s ops into kernels with ``rules`` (shape-only ops vanish; x * sigmoid(x) is one swish op)."""
    graph = fold_swish(graph)
    consumers = graph.consumers()
    kernel_of: dict[str, Kernel] = {}
    kernels: list[Kernel] = []
    alias: dict[str, str] = {}  # flatten ops point at what they reshape
    for op in graph.ops:
        inputs = tuple(alias.get(i, i) for i in op.inputs)
        if op.kind == "flatten":
            alias[op.name] = inputs[0]
            continue
        joined = None
        if op.kind in ELEMENTWISE_KINDS and op.kind != "concat":
            for src in inputs:
                kernel = kernel_of.get(src)
                if (kernel is not None and kernel.tail.name == src and len(consumers.get(src, ())) == 1
                        and rules.fuses(kernel.head.kind, op.kind) and not (op.kind == "add" and kernel.has("add"))
                        and not kernel.has(op.kind) and not (op.kind == "bn" and kernel.followers)):
                    joined = kernel
                    break
        if joined is not None:
            joined.followers.append(op)
            kernel_of[op.name] = joined
        else:
            kernel = Kernel(op)
            kernels.append(kernel)
            kernel_of[op.name] = kernel
    return kernels


# --- detection -------------------------------------------------------------------------------

def _single(kind: str, shape: tuple[int, int, int], cout: int) -> Graph:
    """A graph of one ``kind`` op on a (C, H, W) input."""
    b = GraphBuilder(f"single-{kind}", (1, *shape))
    _apply(b, "input", kind, cout)
    return b.build()


def _apply(b: GraphBuilder, x: str, kind: str, cout: int) -> str:
    if kind == "conv":  # pointwise: the cheapest conv, so a fused follower's cost stands out
        return b.conv(x, cout, 1, 1)
    if kind == "dwconv":
        return b.dwconv(x, 3, 1)
    if kind == "fc":
        return b.fc(x, cout)
    if kind == "add":
        return b.add(x, "input")
    if kind == "bn":
        return b.bn(x)
    return b.act(x, kind)


def _pair(head: str, follower: str, shape: tuple[int, int, int]) -> Graph:
    b = GraphBuilder(f"pair-{head}-{follower}", (1, *shape))
    x = _apply(b, "input", head, shape[0])
    _apply(b, x, follower, shape[0])
    return b.build()


# Shapes where the follower's own cost is well above timer noise on a small CPU.
_DETECT_SHAPES = ((16, 112, 112), (32, 56, 56))
_FC_SHAPE = (1024, 1, 1)


FUSION_RETRIES = 2  # passes more where the runtime ran the pair as one node but the clock said the follower cost extra
_MEASURABLE_MS = 0.001  # a follower's own time under this, or under this share of the head's, is not measured
_MEASURABLE_SHARE = 0.05  # real followers measured 14-25% of their head (quiet Intel VM); FC activations 0-1%

NodeCounts = Callable[[Sequence[Graph]], "list[Optional[int]]"]


def detect_fusion(measure: Callable[[Sequence[Graph]], list[float]],
                  pairs: Iterable[tuple[str, str]] = CANDIDATE_PAIRS,
                  overhead_ms: float = 0.0, progress: Optional[Callable[[str], None]] = None,
                  node_counts: Optional[NodeCounts] = None) -> FusionRules:
    """Measure each candidate pair and return the pairs that fuse.

    ``measure`` times graphs and returns their latencies in ms (with the per-call overhead of an
    empty run still included; ``overhead_ms`` is subtracted from each). Fused when, on every test
    shape, T(A->B) - T(A) < 0.5 * T(B) and B's own time is measurable (over 1 us and 5% of A's).

    With ``node_counts`` (the compute nodes the runtime ran for each graph, from its per-node profiler;
    None where unknown) a pair whose follower ran a node of its own is never fused, whatever the clock
    said; and where the runtime ran the pair as one node but the clock says the follower still cost
    extra, the shape is timed ``FUSION_RETRIES`` passes more, in alternating order, each graph's fastest
    time counting, before that stands (a conv with a clipped activation does cost extra inside one node;
    a conv with a ReLU does not).
    """
    fused: set[tuple[str, str]] = set()
    evidence: list[dict] = []
    for head, follower in pairs:
        shapes = (_FC_SHAPE,) if head == "fc" else _DETECT_SHAPES
        votes = []
        for shape in shapes:
            b_shape = (shape[0], 1, 1) if head == "fc" else shape
            graphs = [_single(head, shape, shape[0]), _single(follower, b_shape, shape[0]), _pair(head, follower, shape)]
            record = _judge(measure, graphs, overhead_ms, node_counts)
            evidence.append({"head": head, "follower": follower, "shape": list(shape), **record})
            votes.append(record["fused"])
        if all(votes):
            fused.add((head, follower))
        if progress:
            progress(f"fusion {head}+{follower}: {'fused' if all(votes) else 'separate'}")
    return FusionRules(frozenset(fused), tuple(evidence))


def _judge(measure: Callable[[Sequence[Graph]], list[float]], graphs: list[Graph], overhead_ms: float,
           node_counts: Optional[NodeCounts]) -> dict:
    """One shape's evidence: (head, follower, pair) timed, the runtime's node counts where known, the vote."""
    best = list(measure(graphs))
    counts = node_counts([graphs[0], graphs[2]]) if node_counts is not None else [None, None]
    one_node = None if counts[0] is None or counts[1] is None else counts[1] <= counts[0]
    record = _vote(best, overhead_ms)
    if one_node and not record["fused"] and record["measurable"]:
        record = {**_vote(_fastest(measure, graphs, FUSION_RETRIES, best), overhead_ms), "retimed": FUSION_RETRIES}
    if one_node is not None:
        record["nodes"] = {"head": counts[0], "pair": counts[1]}
        record["fused"] = record["fused"] and one_node
    return record


def _vote(best: Sequence[float], overhead_ms: float) -> dict:
    t_a, t_b, t_ab = (max(t - overhead_ms, 1e-6) for t in best)
    # a follower that costs nothing measurable alone (an activation on an FC layer's 1024 outputs) has nothing
    # to absorb: the test would be "marginal < 0", a coin toss on the clock's noise; it stays separate
    measurable = t_b >= max(_MEASURABLE_MS, _MEASURABLE_SHARE * t_a)
    return {"head_ms": round(t_a, 5), "follower_ms": round(t_b, 5), "pair_ms": round(t_ab, 5), "measurable": measurable,
            "fused": measurable and t_ab - t_a < 0.5 * t_b}


def compute_nodes(nodes: Sequence[tuple]) -> int:
    """How many of a runtime profiler's nodes (name, op type, ...) computed something: its layout reorders
    (ONNX Runtime's ReorderInput/Output, OpenVINO's Reorder) are not the graph's ops."""
    return sum(1 for node in nodes if "Reorder" not in str(node[1]))


def _fastest(measure: Callable[[Sequence[Graph]], list[float]], graphs: list[Graph], passes: int,
             best: Sequence[float]) -> list[float]:
    """Each graph's fastest time over ``best`` (a pass in order) and ``passes`` more calls of ``measure``, the
    first of them reversed, then alternating."""
    best = list(best)
    for done in range(max(1, passes)):
        order = list(range(len(graphs)))[:: 1 if done % 2 else -1]
        for i, ms in zip(order, measure([graphs[i] for i in order])):
            best[i] = min(best[i], ms)
    return best
