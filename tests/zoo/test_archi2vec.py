"""archi2vec (Fennec section 3.2): runtime graphs from autograd, WL words, graph2vec embeddings."""

from __future__ import annotations

import hashlib
import re
from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
from torch import nn  # noqa: E402
from torchvision.models.resnet import BasicBlock, ResNet  # noqa: E402

from zoorank.errors import InputError  # noqa: E402
from zoorank.zoo.archi2vec import (  # noqa: E402
    ArchGraph,
    Archi2Vec,
    autograd_graph,
    layer_count,
    op_label,
    param_count,
    timm_graph,
    timm_input_shape,
    wl_kernel,
    wl_words,
)

torch.set_num_threads(1)
SMALL = (1, 3, 64, 64)


def _mlp(act: type[nn.Module] = nn.ReLU) -> nn.Module:
    return nn.Sequential(nn.Linear(4, 5), act(), nn.Linear(5, 3))


def _label_edges(g: ArchGraph) -> Counter:
    return Counter((g.labels[u], g.labels[v]) for u, v in g.edges)


class Skip(nn.Module):
    """y = conv2(relu(conv1(x))) + conv1(x): one Add with two parents."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        h = self.conv1(x)
        return self.conv2(torch.relu(h)) + h


@pytest.fixture(scope="module")
def zoo() -> dict[str, ArchGraph]:
    """Runtime graphs of a few torchvision architectures (weights=None) at 64 px."""
    torch.manual_seed(0)
    models = {
        "resnet18": torchvision.models.resnet18(weights=None),
        "resnet10": ResNet(BasicBlock, [1, 1, 1, 1]),  # ResNet-10: one BasicBlock per stage
        "alexnet": torchvision.models.alexnet(weights=None),
        "vgg11": torchvision.models.vgg11(weights=None),
        "mobilenet_v2": torchvision.models.mobilenet_v2(weights=None),
        "densenet121": torchvision.models.densenet121(weights=None),
        "resnet34": torchvision.models.resnet34(weights=None),
    }
    return {name: autograd_graph(m, input_shape=SMALL, name=name) for name, m in models.items()}


@pytest.fixture(scope="module")
def fitted(zoo) -> Archi2Vec:
    return Archi2Vec(seed=0).fit(list(zoo.values()))


# -- the runtime graph ------------------------------------------------------------------------------------------


def test_op_label_strips_only_the_version_suffix():
    assert op_label("ConvolutionBackward0") == "ConvolutionBackward"
    assert op_label("MeanBackward1") == "MeanBackward"
    assert op_label("UpsampleBilinear2DBackward1") == "UpsampleBilinear2DBackward"
    assert op_label("AdaptiveAvgPool2DBackward0") == "AdaptiveAvgPool2DBackward"
    assert op_label("CopySlices") == "CopySlices"


def test_real_graph_labels_have_no_version_suffix(zoo):
    for g in zoo.values():
        assert not [lab for lab in g.labels if re.search(r"\d$", lab)], g.name
        assert "AccumulateGrad" not in g.labels and "Variable" not in g.labels
    counts = zoo["resnet18"].op_counts()
    assert counts["ConvolutionBackward"] == 20 and counts["NativeBatchNormBackward"] == 20
    assert counts["AddBackward"] == 8 and counts["AddmmBackward"] == 1 and counts["MaxPool2DWithIndicesBackward"] == 1


def test_mlp_graph_is_exactly_what_autograd_records():
    g = autograd_graph(_mlp(), input_shape=(2, 4))
    # Linear on a 2-D input is addmm(bias, x, weight.t()): the TBackward of each weight is an op vertex.
    assert g.op_counts() == Counter({"AddmmBackward": 2, "TBackward": 2, "ReluBackward": 1})
    assert g.n_edges == 4
    assert _label_edges(g) == Counter({("TBackward", "AddmmBackward"): 2, ("AddmmBackward", "ReluBackward"): 1,
                                       ("ReluBackward", "AddmmBackward"): 1})
    # topological order: every edge goes forward; the output op is last
    assert all(u < v for u, v in g.edges) and g.labels[-1] == "AddmmBackward"
    first = next(v for v, lab in enumerate(g.labels) if lab == "AddmmBackward")
    assert (g.input_inputs[first], g.param_inputs[first]) == (1, 1)  # x and the bias
    assert sum(g.input_inputs) == 1 and sum(g.param_inputs) == 4
    assert g.n_params == param_count(_mlp()) == 4 * 5 + 5 + 5 * 3 + 3
    assert g.input_shape == [2, 4]
    assert layer_count(g) == 2


def test_leaves_become_variable_vertices():
    g = autograd_graph(_mlp(), input_shape=(2, 4), leaves=True)
    assert g.op_counts() == Counter({"AddmmBackward": 2, "TBackward": 2, "ReluBackward": 1, "Variable": 5})
    assert g.n_edges == 4 + 5
    assert layer_count(g) == 2


def test_three_d_input_adds_views():
    g = autograd_graph(_mlp(), input_shape=(2, 7, 4))
    assert g.op_counts()["ViewBackward"] == 4 and g.op_counts()["AddmmBackward"] == 2


def test_skip_connection_gives_an_add_with_two_parents():
    g = autograd_graph(Skip(), input_shape=(1, 3, 8, 8))
    preds = g.predecessors()
    (add,) = [v for v, lab in enumerate(g.labels) if lab == "AddBackward"]
    assert sorted(g.labels[u] for u in preds[add]) == ["ConvolutionBackward", "ConvolutionBackward"]
    conv1 = next(u for u in preds[add] if g.input_inputs[u] == 1)
    assert sorted(g.labels[w] for w in g.successors()[conv1]) == ["AddBackward", "ReluBackward"]
    assert g.op_counts() == Counter({"ConvolutionBackward": 2, "ReluBackward": 1, "AddBackward": 1})


def test_resnet_adds_each_have_two_parents_and_layer_count(zoo):
    g = zoo["resnet18"]
    preds = g.predecessors()
    adds = [v for v, lab in enumerate(g.labels) if lab == "AddBackward"]
    assert len(adds) == 8 and all(len(preds[v]) == 2 for v in adds)
    assert layer_count(g) == 21  # 17 convolutions + 3 downsampling convolutions + the classifier
    assert layer_count(zoo["resnet10"]) == 13
    assert g.n_params == param_count(torchvision.models.resnet18(weights=None)) == 11_689_512


def test_attention_products_are_not_layers():
    class Attn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q, self.k = nn.Linear(8, 8), nn.Linear(8, 8)

        def forward(self, x):
            return torch.softmax(self.q(x) @ self.k(x).transpose(1, 2), -1)

    g = autograd_graph(Attn(), input_shape=(2, 5, 8))
    assert "BmmBackward" in g.labels or "MmBackward" in g.labels or "UnsafeViewBackward" in g.labels
    assert layer_count(g) == 2


def test_tuple_and_dict_outputs_use_the_first_tensor():
    class Tup(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mlp = _mlp()

        def forward(self, x):
            return {"logits": (self.mlp(x), None), "aux": torch.sigmoid(x)}

    g = autograd_graph(Tup(), input_shape=(2, 4))
    assert g.op_counts() == Counter({"AddmmBackward": 2, "TBackward": 2, "ReluBackward": 1})


def test_callers_model_and_input_are_left_unchanged():
    model = torchvision.models.resnet18(weights=None)
    model.train()
    model.layer1.eval()
    for p in model.layer2.parameters():
        p.requires_grad_(False)
    flags = [(n, m.training) for n, m in model.named_modules()]
    grads = [(n, p.requires_grad) for n, p in model.named_parameters()]
    stats = model.bn1.running_mean.clone()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():  # the caller's no-grad context does not stop the walk
        g = autograd_graph(model, x)
    assert [(n, m.training) for n, m in model.named_modules()] == flags
    assert [(n, p.requires_grad) for n, p in model.named_parameters()] == grads
    assert torch.equal(model.bn1.running_mean, stats)  # the pass ran in eval mode
    assert not x.requires_grad and x.grad_fn is None
    assert g.op_counts()["ConvolutionBackward"] == 20 and layer_count(g) == 21  # frozen layers are still walked


def test_bad_models_and_inputs_raise_input_error():
    with pytest.raises(InputError, match="failed a forward pass"):
        autograd_graph(nn.Linear(4, 3), input_shape=SMALL)
    with pytest.raises(InputError, match=r"torch\.nn\.Module"):
        autograd_graph("resnet18")

    class Detached(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(x).detach()

    with pytest.raises(InputError, match="no autograd history"):
        autograd_graph(Detached(), input_shape=(2, 4))

    class NoTensor(nn.Module):
        def forward(self, x):
            return "nothing"

    with pytest.raises(InputError, match="no tensor"):
        autograd_graph(NoTensor(), input_shape=(2, 4))
    with pytest.raises(InputError, match="input_shape"):
        autograd_graph(_mlp(), input_shape=(2, 0))
    with pytest.raises(InputError, match="example"):
        autograd_graph(_mlp(), [np.zeros((2, 4))])


def test_arch_graph_validation_and_json_roundtrip(tmp_path, zoo):
    with pytest.raises(InputError, match="cycle"):
        ArchGraph(labels=["A", "B"], edges=[(0, 1), (1, 0)])
    with pytest.raises(InputError, match="out of range"):
        ArchGraph(labels=["A", "B"], edges=[(0, 2)])
    with pytest.raises(InputError, match="at least one vertex"):
        ArchGraph(labels=[], edges=[])
    g = zoo["densenet121"]
    g.save(tmp_path / "g.json")
    back = ArchGraph.load(tmp_path / "g.json")
    assert back == g and wl_words(back) == wl_words(g)


# -- WL words -----------------------------------------------------------------------------------------------------


def _h(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def test_wl_words_follow_the_documented_formula():
    g = ArchGraph(labels=["A", "B", "C"], edges=[(0, 2), (1, 2)])
    words = wl_words(g, iterations=1)
    assert words[:3] == ["A", "B", "C"]
    assert words[3:] == ["1:" + _h("A||C"), "1:" + _h("B||C"), "1:" + _h("C|A,B|")]
    assert len(wl_words(g, iterations=3)) == 12 and wl_words(g, iterations=0) == ["A", "B", "C"]


def test_wl_words_see_one_changed_op_and_edge_direction():
    relu, gelu = autograd_graph(_mlp(nn.ReLU), input_shape=(2, 4)), autograd_graph(_mlp(nn.GELU), input_shape=(2, 4))
    a, b = Counter(wl_words(relu, 2)), Counter(wl_words(gelu, 2))
    assert a != b
    level0 = lambda c: Counter({w: k for w, k in c.items() if ":" not in w})  # noqa: E731
    assert level0(a) - level0(b) == Counter({"ReluBackward": 1})
    assert level0(b) - level0(a) == Counter({"GeluBackward": 1})
    # the neighbours of the changed op get new words at level 1 too
    level1 = lambda c: Counter({w: k for w, k in c.items() if w.startswith("1:")})  # noqa: E731
    assert sum((level1(a) - level1(b)).values()) == 3
    # same labels, reversed edge: level 0 equal, level 1 different (the graph is treated as directed)
    fwd, rev = ArchGraph(["A", "B"], [(0, 1)]), ArchGraph(["A", "B"], [(1, 0)])
    assert wl_words(fwd, 0) == wl_words(rev, 0) and wl_words(fwd, 1) != wl_words(rev, 1)


def test_wl_kernel_agrees_with_the_paper(zoo):
    names = list(zoo)
    K = wl_kernel(list(zoo.values()), 2)
    i = {n: names.index(n) for n in names}
    np.testing.assert_allclose(np.diag(K), 1.0)
    np.testing.assert_allclose(K, K.T)
    assert K[i["resnet18"], i["resnet10"]] > 0.9 > 0.5 > K[i["resnet18"], i["alexnet"]]


# -- graph2vec ---------------------------------------------------------------------------------------------------


def test_embeddings_agree_with_the_paper(zoo, fitted):
    names = list(zoo)
    S = fitted.similarity()
    i = {n: names.index(n) for n in names}
    assert fitted.embeddings_.shape == (len(zoo), 32)
    r18 = i["resnet18"]
    assert S[r18, i["resnet10"]] > S[r18, i["alexnet"]] + 0.15
    assert S[r18, i["resnet34"]] > S[r18, i["alexnet"]] and S[i["alexnet"], i["vgg11"]] > S[i["alexnet"], r18]
    assert fitted.nearest("resnet18", 2)[0][0] in {"resnet10", "resnet34"}
    labels = fitted.cluster(4, seed=0)
    assert labels[r18] == labels[i["resnet10"]] == labels[i["resnet34"]]
    assert labels[i["alexnet"]] == labels[i["vgg11"]] != labels[r18]


def test_fit_is_deterministic_and_seeded(zoo, fitted):
    graphs = list(zoo.values())
    again = Archi2Vec(seed=0).fit(graphs)
    np.testing.assert_array_equal(again.embeddings_, fitted.embeddings_)
    other = Archi2Vec(seed=1).fit(graphs)
    assert not np.array_equal(other.embeddings_, fitted.embeddings_)


def test_transform_is_infer_vector(zoo, fitted):
    graphs = list(zoo.values())
    T = fitted.transform(graphs)
    # the fitted vectors are optimal for the frozen word vectors, so inference finds them again
    cos = np.sum(T * fitted.embeddings_, 1) / np.linalg.norm(T, axis=1) / np.linalg.norm(fitted.embeddings_, axis=1)
    assert cos.min() > 0.99
    # one graph's vector does not depend on the others passed with it
    np.testing.assert_allclose(fitted.transform([graphs[2]])[0], T[2], rtol=1e-10, atol=1e-12)
    # an unseen architecture lands next to its family
    new = autograd_graph(torchvision.models.resnet50(weights=None), input_shape=SMALL, name="resnet50")
    v = fitted.transform([new])[0]
    sims = fitted.similarity(np.vstack([fitted.embeddings_, v]))[-1, :-1]
    names = list(zoo)
    assert sims[names.index("resnet34")] > sims[names.index("alexnet")]
    with pytest.raises(InputError, match="shares no WL word"):
        fitted.transform([ArchGraph(["NeverSeenBackward"], [])])


def test_save_load_roundtrip(tmp_path, zoo, fitted):
    fitted.save(tmp_path / "a2v.npz")
    back = Archi2Vec.load(tmp_path / "a2v.npz")
    np.testing.assert_array_equal(back.embeddings_, fitted.embeddings_)
    assert back.names_ == fitted.names_ and back.vocabulary_ == fitted.vocabulary_
    graphs = list(zoo.values())[:2]
    np.testing.assert_array_equal(back.transform(graphs), fitted.transform(graphs))
    with np.load(tmp_path / "a2v.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_archi2vec_bad_input(zoo, fitted):
    g = list(zoo.values())
    with pytest.raises(InputError, match="at least 2"):
        Archi2Vec().fit(g[:1])
    with pytest.raises(InputError, match="not an ArchGraph"):
        Archi2Vec().fit([g[0], "resnet"])
    with pytest.raises(InputError, match="fit"):
        Archi2Vec().transform(g)
    with pytest.raises(InputError, match="dim"):
        Archi2Vec(dim=0)
    with pytest.raises(InputError, match="n_clusters"):
        fitted.cluster(len(g) + 1)
    with pytest.raises(InputError, match="no fitted graph"):
        fitted.nearest("nope")


def test_timm_architectures():
    pytest.importorskip("timm")
    import timm

    g = timm_graph("resnet10t")
    assert g.input_shape == [1, 3, 64, 64] and g.op_counts()["AddBackward"] == 4 and layer_count(g) == 15
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    assert timm_input_shape(vit, 64) == (1, 3, 224, 224)  # fixed input size (absolute position embeddings)
