"""archi2vec (Fennec, Bai et al. 2024, section 3.2 and appendix table 6): architectures as vectors.

Three steps, each usable on its own:

1. **The runtime graph** (:func:`autograd_graph`). One forward pass of the model in eval mode on a small seeded
   input that requires grad, then an iterative walk of the autograd graph from the output's ``grad_fn`` through
   ``next_functions`` back to the input. Every distinct autograd node (deduplicated by object identity, the walk
   keeps a reference to each so identities are not reused) becomes a vertex whose attribute is the node's type
   name with the trailing version digits removed (``ConvolutionBackward0`` -> ``ConvolutionBackward``,
   ``MeanBackward1`` -> ``MeanBackward``); the paper's table 6 lists the 37 such types it saw. Edges follow the
   forward data flow: ``(u, v)`` means the output of ``u`` is an input of ``v`` (the reverse of
   ``next_functions``); parallel edges are merged, so the graph is a simple directed acyclic graph. Leaf tensors
   (``AccumulateGrad`` nodes: the parameters and the input) are *not* vertices by default - only operations are;
   each vertex instead records how many parameter leaves and input leaves it consumes directly
   (``param_inputs``, ``input_inputs``). With ``leaves=True`` they are vertices labelled ``Variable`` (what we
   take table 6's ``Variable`` to be). Parameter-only operations such as the ``TBackward`` that transposes a Linear
   weight are kept, as in table 6. Vertices are stored in a topological order (inputs first). The caller's model is
   left as it was: ``requires_grad`` of every parameter and the ``training`` flag of every submodule are restored
   afterwards.

2. **Weisfeiler-Lehman words** (:func:`wl_words`). Level 0 gives each vertex its op label ``l_0(v)``. Level
   ``i >= 1`` relabels by hashing (BLAKE2b, 64 bits, stable across processes)::

       l_i(v) = hash( l_{i-1}(v) | sort{ l_{i-1}(u) : u -> v } | sort{ l_{i-1}(w) : v -> w } )

   i.e. the graph is treated as *directed*: predecessors (data coming in) and successors (data going out) are two
   separate sorted multisets, so ``a -> b`` and ``b -> a`` differ. The words of a graph are all ``l_i(v)`` for
   ``i = 0..h`` and every vertex (a multiset: the rooted subtrees of depth ``i`` of graph2vec, Narayanan et al.
   2017). :func:`wl_kernel` is the normalised WL subtree kernel ``<phi_a, phi_b> / (|phi_a| |phi_b|)`` over
   the word counts.

3. **graph2vec** (:class:`Archi2Vec`): doc2vec's PV-DBOW (Le & Mikolov 2014) with graphs as documents and WL words
   as words. Graph ``d`` has a vector ``D_d``, word ``w`` an output vector ``W_w`` (dimension ``dim``); with
   ``q_dw`` the graph's word distribution (word counts times the word2vec sub-sampling keep probability
   ``p_w = min(1, (sqrt(f_w / s) + 1) s / f_w)``, normalised to sum 1 per graph, so every graph weighs the same)
   and ``P(n) ~ count(n)^0.75`` the noise distribution of ``K`` negatives, the loss is the negative-sampling
   objective *in expectation* over the sub-sampling and the negative draws::

       J(D, W) = sum_d [ sum_w q_dw softplus(-D_d . W_w) + K sum_n P(n) softplus(D_d . W_n) ]
                 + lambda / 2 (|D|^2 + |W|^2)

   minimised by full-batch L-BFGS (scipy) from a seeded random start instead of Hogwild SGD on sampled pairs,
   so a fit is deterministic given ``seed``. :meth:`Archi2Vec.transform` is doc2vec's ``infer_vector``: ``W``
   frozen, each new graph's vector minimises its own (strictly convex) term of ``J``; words never seen in the fit
   are dropped. At the fitted optimum, transforming a training graph gives back its row of ``embeddings_``.
   :meth:`Archi2Vec.cluster` runs KMeans on the (unit-normalised) embeddings, as the paper does.

Basic meta features (section 3.2): :func:`param_count` and :func:`layer_count` (the number of convolution and
matrix-product vertices that apply parameters to data, see its docstring).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoorank.errors import InputError
from zoorank.ranking import best_first

_VERSION = re.compile(r"\d+$")
LEAF_LABEL = "Variable"

# Op labels counted by layer_count when they consume a parameter: convolutions and matrix products.
LAYER_OPS: frozenset[str] = frozenset({
    "ConvolutionBackward", "ConvolutionBackwardOverrideable", "MkldnnConvolutionBackward", "SlowConv2DBackward",
    "SlowConv3DBackward", "SlowConvDilated2DBackward", "SlowConvDilated3DBackward", "ConvDepthwise2DBackward",
    "ConvDepthwise3DBackward", "SlowConvTranspose2DBackward", "SlowConvTranspose3DBackward",
    "CudnnConvolutionBackward", "CudnnConvolutionTransposeBackward", "ThnnConv2DBackward",
    "AddmmBackward", "MmBackward", "BmmBackward", "BaddbmmBackward", "AddbmmBackward", "MvBackward",
    "AddmvBackward", "LinearBackward", "MkldnnLinearBackward", "EmbeddingBackward", "EmbeddingBagBackward",
})


def op_label(type_name: str) -> str:
    """An autograd node's type name without its trailing version digits: ``AddBackward0`` -> ``AddBackward``."""
    return _VERSION.sub("", type_name)


# -- the graph ------------------------------------------------------------------------------------------------


@dataclass
class ArchGraph:
    """A directed acyclic attributed graph of one architecture.

    ``labels[v]`` is vertex ``v``'s op label; ``edges`` are ``(u, v)`` pairs in forward data-flow order
    (``u``'s output feeds ``v``); ``param_inputs[v]`` / ``input_inputs[v]`` count the parameter / input leaf
    tensors that ``v`` consumes directly (for a ``Variable`` vertex: 1 in the matching field for itself)."""

    labels: list[str]
    edges: list[tuple[int, int]]
    param_inputs: list[int] = field(default_factory=list)
    input_inputs: list[int] = field(default_factory=list)
    name: str = ""
    n_params: int | None = None
    input_shape: list[int] | None = None  # shape of the (first) input the graph was recorded with

    def __post_init__(self) -> None:
        n = len(self.labels)
        if n == 0:
            raise InputError(f"ArchGraph {self.name!r}: a graph needs at least one vertex")
        if not all(isinstance(x, str) and x for x in self.labels):
            raise InputError(f"ArchGraph {self.name!r}: labels must be non-empty strings")
        self.labels = list(self.labels)
        self.param_inputs = list(self.param_inputs) if len(self.param_inputs) else [0] * n
        self.input_inputs = list(self.input_inputs) if len(self.input_inputs) else [0] * n
        if len(self.param_inputs) != n or len(self.input_inputs) != n:
            raise InputError(f"ArchGraph {self.name!r}: param_inputs and input_inputs need one entry per vertex ({n})")
        edges = []
        for e in self.edges:
            if len(e) != 2:
                raise InputError(f"ArchGraph {self.name!r}: edge {e!r} is not a (source, target) pair")
            u, v = int(e[0]), int(e[1])
            if not (0 <= u < n and 0 <= v < n) or u == v:
                raise InputError(f"ArchGraph {self.name!r}: edge ({u}, {v}) is out of range or a self-loop (n={n})")
            edges.append((u, v))
        if len(set(edges)) != len(edges):
            raise InputError(f"ArchGraph {self.name!r}: repeated edges")
        self.edges = edges
        if len(_topological_order(n, edges)) != n:
            raise InputError(f"ArchGraph {self.name!r}: the edges contain a cycle")

    @property
    def n_nodes(self) -> int:
        return len(self.labels)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    def op_counts(self) -> Counter[str]:
        """How many vertices carry each label."""
        return Counter(self.labels)

    def predecessors(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in self.labels]
        for u, v in self.edges:
            out[v].append(u)
        return out

    def successors(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in self.labels]
        for u, v in self.edges:
            out[u].append(v)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "n_params": self.n_params, "input_shape": self.input_shape, "labels": self.labels,
                "edges": [list(e) for e in self.edges], "param_inputs": self.param_inputs,
                "input_inputs": self.input_inputs}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArchGraph:
        if not isinstance(d, dict) or "labels" not in d or "edges" not in d:
            raise InputError("ArchGraph.from_dict: expected a mapping with 'labels' and 'edges'")
        return cls(labels=list(d["labels"]), edges=[tuple(e) for e in d["edges"]],
                   param_inputs=list(d.get("param_inputs") or []), input_inputs=list(d.get("input_inputs") or []),
                   name=str(d.get("name", "")), n_params=d.get("n_params"), input_shape=d.get("input_shape"))

    def save(self, path: str | Path) -> None:
        """Write the graph as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), separators=(",", ":")))

    @classmethod
    def load(cls, path: str | Path) -> ArchGraph:
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"ArchGraph.load: cannot read {path}: {exc}") from exc
        return cls.from_dict(d)


def _topological_order(n: int, edges: Sequence[tuple[int, int]]) -> list[int]:
    """Kahn's algorithm, ties broken by the smaller index; shorter than ``n`` when there is a cycle."""
    import heapq

    indeg = [0] * n
    succ: list[list[int]] = [[] for _ in range(n)]
    for u, v in edges:
        succ[u].append(v)
        indeg[v] += 1
    heap = [v for v in range(n) if indeg[v] == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        u = heapq.heappop(heap)
        order.append(u)
        for v in succ[u]:
            indeg[v] -= 1
            if indeg[v] == 0:
                heapq.heappush(heap, v)
    return order


# -- building it from a model -----------------------------------------------------------------------------------


def param_count(model: Any) -> int:
    """Number of scalars in the model's (distinct) parameters."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise InputError(f"param_count: model must be a torch.nn.Module, got {type(model).__name__}")
    return int(sum(p.numel() for p in model.parameters()))


def layer_count(graph: ArchGraph, ops: Iterable[str] = LAYER_OPS) -> int:
    """Number of vertices whose label is in ``ops`` (default :data:`LAYER_OPS`: convolutions and matrix products
    such as ``ConvolutionBackward``, ``AddmmBackward``, ``MmBackward``, ``BmmBackward``) and that consume a
    parameter: a parameter leaf directly, or a vertex whose value depends on parameters only (no input leaf
    upstream), such as the ``TBackward`` of a Linear weight. Products of two activations (attention's
    ``q @ k^T``) are not layers. ResNet-18 has 21 (20 convolutions and the classifier)."""
    if not isinstance(graph, ArchGraph):
        raise InputError(f"layer_count: expected an ArchGraph, got {type(graph).__name__}")
    ops = frozenset(ops)
    preds = graph.predecessors()
    data = [False] * graph.n_nodes
    order = _topological_order(graph.n_nodes, graph.edges)
    for v in order:
        data[v] = graph.input_inputs[v] > 0 or any(data[u] for u in preds[v])
    return sum(
        1 for v in range(graph.n_nodes)
        if graph.labels[v] in ops and (graph.param_inputs[v] > 0 or any(not data[u] for u in preds[v]))
    )


def _first_tensor(out: Any, torch: Any, depth: int = 0) -> Any:
    """The first tensor in a (nested) tensor / tuple / list / dict output, or None."""
    if isinstance(out, torch.Tensor):
        return out
    if depth > 8:
        return None
    if isinstance(out, dict):
        items: Iterable[Any] = out.values()
    elif isinstance(out, list | tuple):
        items = out
    elif hasattr(out, "to_tuple"):  # Hugging Face ModelOutput
        items = out.to_tuple()
    else:
        return None
    for item in items:
        t = _first_tensor(item, torch, depth + 1)
        if t is not None:
            return t
    return None


def _prepare_inputs(model: Any, example: Any, input_shape: Sequence[int], torch: Any) -> list[Any]:
    """Fresh input tensors (never the caller's own objects): floating ones require grad."""
    first = next((p for p in model.parameters() if p.is_floating_point()), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None else torch.float32
    if example is None:
        shape = tuple(input_shape)
        if not shape or not all(isinstance(s, int | np.integer) and s > 0 for s in shape):
            raise InputError(f"autograd_graph: input_shape must be positive integers, got {input_shape!r}")
        gen = torch.Generator().manual_seed(0)
        return [torch.randn(shape, generator=gen).to(device=device, dtype=dtype).requires_grad_(True)]
    examples = list(example) if isinstance(example, list | tuple) else [example]
    if not examples or not all(isinstance(x, torch.Tensor) for x in examples):
        raise InputError("autograd_graph: example must be a tensor or a non-empty sequence of tensors")
    out = []
    for x in examples:
        x = x.detach().clone()
        if x.is_floating_point():
            x.requires_grad_(True)
        out.append(x)
    return out


def autograd_graph(model: Any, example: Any = None, *, input_shape: Sequence[int] = (1, 3, 64, 64),
                   name: str = "", leaves: bool = False) -> ArchGraph:
    """The runtime graph of ``model`` from one forward pass in eval mode (see the module docstring).

    ``example``: a tensor or a sequence of tensors passed as positional arguments (cloned; floating ones require
    grad); when None, a seeded ``randn(input_shape)`` on the model's device and dtype. A tuple, list or dict output
    is reduced to its first tensor. ``leaves=True`` keeps parameter and input leaves as ``Variable`` vertices.
    Raises :class:`InputError` when the model is not a module, cannot run on the input, or its output has no
    autograd history."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise InputError(f"autograd_graph: model must be a torch.nn.Module, got {type(model).__name__}")
    who = name or type(model).__name__
    inputs = _prepare_inputs(model, example, input_shape, torch)
    params = list(model.parameters())
    saved_grad = [p.requires_grad for p in params]
    saved_modes = [(m, m.training) for m in model.modules()]
    try:
        for p in params:
            if p.is_floating_point() or p.is_complex():
                p.requires_grad_(True)
        model.eval()
        with torch.enable_grad():
            try:
                out = model(*inputs)
            except Exception as exc:
                shapes = [tuple(x.shape) for x in inputs]
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise InputError(f"autograd_graph: model {who!r} failed a forward pass on input of shape "
                                 f"{shapes[0] if len(shapes) == 1 else shapes}: {first}") from exc
            root = _first_tensor(out, torch)
            if root is None:
                raise InputError(f"autograd_graph: model {who!r} returned no tensor ({type(out).__name__})")
            if root.grad_fn is None:
                raise InputError(f"autograd_graph: the output of model {who!r} has no autograd history "
                                 "(computed without grad, detached, or the input itself)")
            graph = _walk(root.grad_fn, {id(p) for p in params}, leaves, who)
            del out, root
    finally:
        for p, g in zip(params, saved_grad, strict=True):
            p.requires_grad_(g)
        for m, mode in saved_modes:
            m.training = mode
    graph.n_params = int(sum(p.numel() for p in params))
    graph.input_shape = [int(s) for s in inputs[0].shape]
    return graph


def _walk(root: Any, param_ids: set[int], leaves: bool, name: str) -> ArchGraph:
    """Iterative walk of ``next_functions`` from ``root``; returns the graph in topological order."""
    nodes: list[Any] = [root]  # keeps every visited node alive, so id() values stay unique during the walk
    index = {id(root): 0}
    labels = [op_label(type(root).__name__)]
    n_param, n_input = [0], [0]
    edges: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        fn = stack.pop()
        v = index[id(fn)]
        for child, _ in fn.next_functions:
            if child is None:
                continue
            is_leaf = type(child).__name__ == "AccumulateGrad"
            is_param = is_leaf and id(getattr(child, "variable", None)) in param_ids
            if is_leaf:
                if is_param:
                    n_param[v] += 1
                else:
                    n_input[v] += 1
                if not leaves:
                    continue
            if id(child) not in index:
                index[id(child)] = len(nodes)
                nodes.append(child)
                labels.append(LEAF_LABEL if is_leaf else op_label(type(child).__name__))
                n_param.append(int(is_param))
                n_input.append(int(is_leaf and not is_param))
                if not is_leaf:
                    stack.append(child)
            edges.add((index[id(child)], v))
    # Renumber in topological order; discovery order runs from the output back, so prefer later-found vertices.
    n = len(nodes)
    rev = [(n - 1 - u, n - 1 - v) for u, v in edges]
    order = [n - 1 - r for r in _topological_order(n, rev)]
    new = {old: i for i, old in enumerate(order)}
    return ArchGraph(labels=[labels[o] for o in order], edges=sorted((new[u], new[v]) for u, v in edges),
                     param_inputs=[n_param[o] for o in order], input_inputs=[n_input[o] for o in order], name=name)


def timm_input_shape(model: Any, image_size: int | None = 64) -> tuple[int, int, int, int]:
    """``(1, C, H, W)`` for a timm model: ``image_size`` square unless the model's ``pretrained_cfg`` says its input
    size is fixed (ViTs with absolute position embeddings, ...) or ``image_size`` is None; then the cfg's size."""
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    c, h, w = tuple(cfg.get("input_size", (3, 224, 224)))[-3:]
    if image_size is None or cfg.get("fixed_input_size", False):
        return (1, int(c), int(h), int(w))
    return (1, int(c), int(image_size), int(image_size))


def timm_graph(name: str, image_size: int | None = 64, **create_kwargs: Any) -> ArchGraph:
    """Build timm architecture ``name`` with ``pretrained=False`` and return its runtime graph: first at
    :func:`timm_input_shape`, then (when that forward pass fails) at the model's configured input size."""
    import timm

    try:
        model = timm.create_model(name, pretrained=False, **create_kwargs)
    except Exception as exc:
        raise InputError(f"timm_graph: cannot build {name!r}: {str(exc).strip()[:300]}") from exc
    return timm_model_graph(model, name, image_size)


def timm_model_graph(model: Any, name: str = "", image_size: int | None = 64) -> ArchGraph:
    """The runtime graph of a built timm model at :func:`timm_input_shape`, retried at the model's configured
    input size when the forward pass fails at ``image_size``."""
    shape = timm_input_shape(model, image_size)
    try:
        return autograd_graph(model, input_shape=shape, name=name)
    except InputError:
        full = timm_input_shape(model, None)
        if full == shape:
            raise
        return autograd_graph(model, input_shape=full, name=name)


# -- Weisfeiler-Lehman words ------------------------------------------------------------------------------------


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def wl_words(graph: ArchGraph, iterations: int = 2) -> list[str]:
    """The WL subtree words of ``graph``: the op labels (level 0) then, for ``i = 1..iterations``, ``"i:<hash>"``
    of each vertex's level ``i-1`` label with its sorted predecessor and successor labels (a multiset, one word per
    vertex and level)."""
    if not isinstance(graph, ArchGraph):
        raise InputError(f"wl_words: expected an ArchGraph, got {type(graph).__name__}")
    if not isinstance(iterations, int | np.integer) or iterations < 0:
        raise InputError(f"wl_words: iterations must be an integer >= 0, got {iterations!r}")
    preds, succs = graph.predecessors(), graph.successors()
    current = list(graph.labels)
    words = list(current)
    for i in range(1, int(iterations) + 1):
        current = [
            f"{i}:" + _hash(current[v] + "|" + ",".join(sorted(current[u] for u in preds[v]))
                            + "|" + ",".join(sorted(current[w] for w in succs[v])))
            for v in range(graph.n_nodes)
        ]
        words.extend(current)
    return words


def wl_kernel(graphs: Sequence[ArchGraph], iterations: int = 2) -> np.ndarray:
    """The normalised WL subtree kernel [n, n]: cosine similarity of the graphs' WL word-count vectors."""
    if len(graphs) == 0:
        raise InputError("wl_kernel: no graphs")
    counts = [Counter(wl_words(g, iterations)) for g in graphs]
    vocab = {w: i for i, w in enumerate(sorted(set().union(*counts)))}
    phi = np.zeros((len(graphs), len(vocab)))
    for r, c in enumerate(counts):
        for w, k in c.items():
            phi[r, vocab[w]] = k
    phi /= np.linalg.norm(phi, axis=1, keepdims=True)
    return phi @ phi.T


# -- graph2vec --------------------------------------------------------------------------------------------------


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class Archi2Vec:
    """graph2vec over runtime graphs (PV-DBOW with WL words, see the module docstring for the objective).

    Parameters: ``dim`` embedding size; ``wl_iterations`` WL depth ``h``; ``epochs`` the L-BFGS iteration budget
    of the fit (and of each inference); ``negative`` ``K``; ``sample`` the sub-sampling threshold ``s``
    (0 disables it); ``min_graphs`` a word must occur in at least this many training graphs to enter the
    vocabulary; ``l2`` ``lambda``; ``seed`` the random start. Fitted attributes: ``embeddings_`` [n, dim],
    ``names_``, ``vocabulary_`` (sorted words), ``word_vectors_`` [V, dim], ``noise_`` ``P`` [V],
    ``keep_`` the sub-sampling keep probabilities [V], ``n_iter_``, ``loss_``, ``converged_`` (L-BFGS met its
    tolerance before the ``epochs`` budget).

    The objective is non-convex and flat along some directions: on 232 timm graphs the default budget (300
    iterations) stops before convergence; going on to 1000 iterations lowers the loss by 0.2% and changes the pairwise
    cosine similarities by 0.025 (median; 99th percentile 0.18, max 0.40: a few graphs with many words of their
    own are weakly pinned), leaving the nearest neighbours of resnet18, vit_tiny and mobilenetv3_small unchanged.
    Vectors are deterministic given (graphs, parameters, seed); compare vectors from one fit (or ``transform``
    against one fit), not across fits with different parameters."""

    def __init__(self, dim: int = 32, wl_iterations: int = 2, epochs: int = 300, *, negative: int = 5,
                 sample: float = 1e-3, min_graphs: int = 1, l2: float = 1e-2, seed: int = 0) -> None:
        for what, v, lo in (("dim", dim, 1), ("wl_iterations", wl_iterations, 0), ("epochs", epochs, 1),
                            ("negative", negative, 1), ("min_graphs", min_graphs, 1)):
            if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < lo:
                raise InputError(f"Archi2Vec: {what} must be an integer >= {lo}, got {v!r}")
        if not np.isfinite(sample) or sample < 0:
            raise InputError(f"Archi2Vec: sample must be >= 0, got {sample!r}")
        if not np.isfinite(l2) or l2 <= 0:
            raise InputError(f"Archi2Vec: l2 must be > 0, got {l2!r}")
        self.dim, self.wl_iterations, self.epochs = int(dim), int(wl_iterations), int(epochs)
        self.negative, self.sample, self.min_graphs = int(negative), float(sample), int(min_graphs)
        self.l2, self.seed = float(l2), int(seed)

    def _params(self) -> dict[str, Any]:
        return {"dim": self.dim, "wl_iterations": self.wl_iterations, "epochs": self.epochs,
                "negative": self.negative, "sample": self.sample, "min_graphs": self.min_graphs,
                "l2": self.l2, "seed": self.seed}

    def __repr__(self) -> str:
        return "Archi2Vec(" + ", ".join(f"{k}={v!r}" for k, v in self._params().items()) + ")"

    # -- fitting

    def _documents(self, graphs: Sequence[ArchGraph], what: str) -> list[Counter[str]]:
        if isinstance(graphs, ArchGraph) or not isinstance(graphs, Sequence):
            raise InputError(f"Archi2Vec.{what}: graphs must be a sequence of ArchGraph")
        bad = [i for i, g in enumerate(graphs) if not isinstance(g, ArchGraph)]
        if bad:
            raise InputError(f"Archi2Vec.{what}: item {bad[0]} is a {type(graphs[bad[0]]).__name__}, not an ArchGraph")
        return [Counter(wl_words(g, self.wl_iterations)) for g in graphs]

    def _distribution(self, doc: Counter[str]) -> tuple[np.ndarray, np.ndarray]:
        """(vocabulary indices, q weights summing to 1) of a document's known words."""
        idx = np.array([self._index[w] for w in doc if w in self._index], dtype=np.int64)
        cnt = np.array([c for w, c in doc.items() if w in self._index], dtype=np.float64)
        if idx.size == 0:
            return idx, cnt
        q = cnt * self.keep_[idx]
        return idx, q / q.sum()

    def fit(self, graphs: Sequence[ArchGraph]) -> Archi2Vec:
        """Learn graph and word vectors from ``graphs`` (at least 2)."""
        from scipy.optimize import minimize

        docs = self._documents(graphs, "fit")
        if len(docs) < 2:
            raise InputError(f"Archi2Vec.fit: needs at least 2 graphs, got {len(docs)}")
        df = Counter(w for d in docs for w in d)
        vocab = sorted(w for w, k in df.items() if k >= self.min_graphs)
        if not vocab:
            raise InputError(f"Archi2Vec.fit: no WL word occurs in {self.min_graphs} or more graphs")
        self.vocabulary_ = vocab
        self._index = {w: i for i, w in enumerate(vocab)}
        total = np.zeros(len(vocab))
        for d in docs:
            for w, c in d.items():
                if w in self._index:
                    total[self._index[w]] += c
        freq = total / total.sum()
        if self.sample > 0:
            self.keep_ = np.minimum(1.0, (np.sqrt(freq / self.sample) + 1.0) * self.sample / freq)
        else:
            self.keep_ = np.ones(len(vocab))
        noise = total ** 0.75
        self.noise_ = noise / noise.sum()
        n, V, k = len(docs), len(vocab), self.dim
        Q = np.zeros((n, V))
        for r, d in enumerate(docs):
            idx, q = self._distribution(d)
            if idx.size == 0:
                raise InputError(f"Archi2Vec.fit: graph {r} ({graphs[r].name!r}) has no word in the vocabulary "
                                 f"(min_graphs={self.min_graphs})")
            Q[r, idx] = q
        KP = self.negative * self.noise_[None, :]
        lam = self.l2

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            D, W = theta[: n * k].reshape(n, k), theta[n * k:].reshape(V, k)
            S = D @ W.T
            loss = float(np.sum(Q * _softplus(-S)) + np.sum(KP * _softplus(S))
                         + 0.5 * lam * (np.sum(D * D) + np.sum(W * W)))
            G = -Q * _sigmoid(-S) + KP * _sigmoid(S)
            grad = np.concatenate([(G @ W + lam * D).ravel(), (G.T @ D + lam * W).ravel()])
            return loss, grad

        rng = np.random.default_rng(self.seed)
        theta0 = np.concatenate([((rng.random((n, k)) - 0.5) / k).ravel(), ((rng.random((V, k)) - 0.5) / k).ravel()])
        res = minimize(objective, theta0, jac=True, method="L-BFGS-B",
                       options={"maxiter": self.epochs, "maxcor": 20, "gtol": 1e-9, "ftol": 1e-13})
        self.embeddings_ = res.x[: n * k].reshape(n, k).copy()
        self.word_vectors_ = res.x[n * k:].reshape(V, k).copy()
        self.n_iter_, self.loss_ = int(res.nit), float(res.fun)
        self.converged_ = bool(res.success)
        self.names_ = [g.name for g in graphs]
        return self

    def _check_fitted(self, what: str) -> None:
        if not hasattr(self, "embeddings_"):
            raise InputError(f"Archi2Vec.{what}: call fit() (or load()) first")

    def transform(self, graphs: Sequence[ArchGraph]) -> np.ndarray:
        """Vectors [len(graphs), dim] for (new) graphs with the word vectors frozen (doc2vec's ``infer_vector``).
        Each graph is solved on its own, so a graph's vector does not depend on the others passed with it."""
        from scipy.optimize import minimize

        self._check_fitted("transform")
        docs = self._documents(graphs, "transform")
        W, lam = self.word_vectors_, self.l2
        kp = self.negative * self.noise_
        out = np.zeros((len(docs), self.dim))
        for r, doc in enumerate(docs):
            idx, q = self._distribution(doc)
            if idx.size == 0:
                raise InputError(f"Archi2Vec.transform: graph {r} ({graphs[r].name!r}) shares no WL word with the "
                                 "fitted vocabulary")
            Wq = W[idx]

            def objective(d: np.ndarray, Wq: np.ndarray = Wq, q: np.ndarray = q) -> tuple[float, np.ndarray]:
                sp, s = Wq @ d, W @ d
                loss = float(q @ _softplus(-sp) + kp @ _softplus(s) + 0.5 * lam * d @ d)
                grad = -(q * _sigmoid(-sp)) @ Wq + (kp * _sigmoid(s)) @ W + lam * d
                return loss, grad

            res = minimize(objective, np.zeros(self.dim), jac=True, method="L-BFGS-B",
                           options={"maxiter": max(self.epochs, 200), "gtol": 1e-10, "ftol": 1e-15})
            out[r] = res.x
        return out

    # -- using the vectors

    def similarity(self, vectors: np.ndarray | None = None) -> np.ndarray:
        """Cosine similarity matrix of ``vectors`` (default: the fitted embeddings)."""
        self._check_fitted("similarity")
        X = self.embeddings_ if vectors is None else np.asarray(vectors, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.dim:
            raise InputError(f"Archi2Vec.similarity: vectors must be [n, {self.dim}], got {X.shape}")
        U = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-300)
        return U @ U.T

    def nearest(self, name: str, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` fitted graphs most cosine-similar to the fitted graph called ``name``, best first."""
        self._check_fitted("nearest")
        if name not in self.names_:
            raise InputError(f"Archi2Vec.nearest: no fitted graph named {name!r}")
        i = self.names_.index(name)
        sim = self.similarity()[i]
        order = [j for j in best_first(sim) if j != i][: max(int(k), 0)]
        return [(self.names_[j], float(sim[j])) for j in order]

    def cluster(self, n_clusters: int, seed: int = 0, normalize: bool = True) -> np.ndarray:
        """KMeans labels [n] of the fitted embeddings (unit-normalised first when ``normalize``, so the clusters
        follow cosine similarity)."""
        from sklearn.cluster import KMeans

        self._check_fitted("cluster")
        n = self.embeddings_.shape[0]
        if not isinstance(n_clusters, int | np.integer) or not 1 <= n_clusters <= n:
            raise InputError(f"Archi2Vec.cluster: n_clusters must be an integer in [1, {n}], got {n_clusters!r}")
        X = self.embeddings_
        if normalize:
            X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-300)
        return KMeans(n_clusters=int(n_clusters), random_state=int(seed), n_init=10).fit_predict(X)

    # -- persistence (npz, no pickle)

    def save(self, path: str | Path) -> None:
        """Write the fitted model to ``path`` (npz; strings as unicode arrays, parameters as JSON)."""
        self._check_fitted("save")
        meta = {"params": self._params(), "n_iter": self.n_iter_, "loss": self.loss_, "converged": self.converged_}
        with open(path, "wb") as fh:
            np.savez(fh, embeddings=self.embeddings_, word_vectors=self.word_vectors_, noise=self.noise_,
                     keep=self.keep_, vocabulary=np.array(self.vocabulary_, dtype=str),
                     names=np.array(self.names_, dtype=str), meta=np.array(json.dumps(meta)))

    @classmethod
    def load(cls, path: str | Path) -> Archi2Vec:
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                model = cls(**meta["params"])
                model.embeddings_ = z["embeddings"].astype(np.float64)
                model.word_vectors_ = z["word_vectors"].astype(np.float64)
                model.noise_, model.keep_ = z["noise"].astype(np.float64), z["keep"].astype(np.float64)
                model.vocabulary_ = [str(w) for w in z["vocabulary"]]
                model.names_ = [str(w) for w in z["names"]]
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"Archi2Vec.load: cannot read {path}: {exc}") from exc
        model._index = {w: i for i, w in enumerate(model.vocabulary_)}
        model.n_iter_, model.loss_ = int(meta["n_iter"]), float(meta["loss"])
        model.converged_ = bool(meta.get("converged", False))
        return model
