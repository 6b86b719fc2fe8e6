"""minise <-> PyTorch: a PyTorch CIFAR script run as it is (only `torch` renamed), the safetensors bridge,
timm's SE-ResNet-50 weights, and the paper's Table 2 costs.

Oracles: PyTorch itself (the same script from the same weights gives the same losses; the twins'
logits), timm's module names (the twins in minise.models.torch_twins carry them), and the parameter
counts / multiply-adds of the SE paper's Table 2.
"""

import re

import numpy as np
import pytest
from helpers import torch_or_skip

import minise as ms
from minise import data, models, viz
from minise.analysis import excitations_per_class
from minise.cli import main
from minise.models import torch_twins

pytest.importorskip("safetensors")

# --- a PyTorch CIFAR-10 training script, as the PyTorch tutorial writes it ----------------------
TORCH_SCRIPT = '''
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.bn2 = nn.BatchNorm2d(16)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120 + 16, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        squeezed = self.gap(x).squeeze(-1).squeeze(-1)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = torch.cat([x, squeezed], dim=1)
        return self.fc2(x)


device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
torch.manual_seed(0)
net = Net()
net.load_state_dict(initial_weights)
net.to(device)

images = torch.from_numpy(train_images).float() / 255
mean = torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1)
images = (images - mean) / 0.25
labels = torch.from_numpy(train_labels)
trainset = TensorDataset(images, labels)
trainloader = DataLoader(trainset, batch_size=16, shuffle=False, num_workers=0)

criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

losses = []
for epoch in range(1):
    running_loss = 0.0
    for i, data in enumerate(trainloader, 0):
        inputs, targets = data[0].to(device), data[1].to(device)
        optimizer.zero_grad()
        outputs = net(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
        losses.append(loss.item())

torch.save(net.state_dict(), PATH)
net = Net()
net.load_state_dict(torch.load(PATH, map_location="cpu", weights_only=True))
net.eval()
correct = 0
total = 0
with torch.no_grad():
    for data in trainloader:
        inputs, targets = data
        outputs = net(inputs)
        _, predicted = torch.max(outputs.data, 1)
        total += targets.size(0)
        correct += (predicted == targets).sum().item()
n_params = sum(p.numel() for p in net.parameters())
final = {k: v.numpy() for k, v in net.state_dict().items()}
'''

RENAMES = [(r"\btorch\.utils\.data\b", "minise.data"), (r"\btorch\b", "minise")]


def translate(script):
    """The minise twin of a PyTorch script: only the renames above."""
    for pattern, new in RENAMES:
        script = re.sub(pattern, new, script)
    return script


def test_translation_only_renames_torch():
    ms_script = translate(TORCH_SCRIPT)
    torch_lines, ms_lines = TORCH_SCRIPT.splitlines(), ms_script.splitlines()
    changed = [(a, b) for a, b in zip(torch_lines, ms_lines) if a != b]
    assert len(torch_lines) == len(ms_lines) and changed
    for a, b in changed:
        assert "minise" in b and re.sub(r"\bminise\.data\b", "torch.utils.data", b).replace("minise", "torch") == a


@pytest.mark.parametrize("model", ["tutorial_net", pytest.param("se_resnet20", marks=pytest.mark.slow)])
def test_pytorch_cifar_script_runs_in_minise_with_the_same_losses(model, tmp_path):
    """The script as it is, and with an SE-ResNet-20 (minise's model vs its PyTorch twin) in place of Net().

    The SE-ResNet-20 variant runs in float64: three SGD steps at lr 0.05 with momentum through 20
    BatchNorm layers amplify float32 rounding, and PyTorch's CPU float32 convolution gradients
    are themselves up to ~4e-3 (relative) away from float64 here (minise's: ~4e-6), so the float32
    losses part at the 4th digit by step 3 while the float64 ones agree to 1e-12.
    """
    torch_or_skip()
    script = TORCH_SCRIPT
    builders = {"torch": None, "minise": None}
    rtol = 1e-5
    if model == "se_resnet20":  # the same edits to both scripts, so they still differ only by the renames
        script = (script.replace("net = Net()", "net = make_net().double()")
                  .replace(".float() / 255", ".double() / 255"))
        builders = {"torch": lambda: torch_twins.torch_resnet(3, reduction=16), "minise": models.se_resnet20}
        rtol = 1e-10
    n = 48 if model == "tutorial_net" else 32
    ds = data.get_dataset("embedded", train=True, n_train=n, n_test=16)
    # the same initial weights for both: PyTorch's default init, each framework getting its own arrays
    head = {"make_net": builders["torch"]}
    exec(compile(script.split("net.load_state_dict(initial_weights)")[0], "torch_head", "exec"), head)
    initial = head["net"].state_dict()
    torch_scope = {"train_images": ds.images, "train_labels": ds.labels, "PATH": str(tmp_path / "net.pth"),
                   "initial_weights": {k: v.clone() for k, v in initial.items()}, "make_net": builders["torch"]}
    ms_scope = {"train_images": ds.images, "train_labels": ds.labels, "PATH": str(tmp_path / "net.ckpt"),
                "initial_weights": {k: v.numpy().copy() for k, v in initial.items()}, "make_net": builders["minise"]}
    exec(compile(script, "torch_script", "exec"), torch_scope)
    exec(compile(translate(script), "minise_script", "exec"), ms_scope)

    assert len(ms_scope["losses"]) == n // 16
    np.testing.assert_allclose(ms_scope["losses"], torch_scope["losses"], rtol=rtol)
    assert ms_scope["losses"][-1] != pytest.approx(ms_scope["losses"][0])  # the steps did change the weights
    assert ms_scope["total"] == torch_scope["total"] == n
    assert ms_scope["correct"] == torch_scope["correct"]
    n_params = {"tutorial_net": 52_394, "se_resnet20": 272_095}[model]  # Net: 456 + 2,416 + 32 + 48,120 + 1,370
    assert ms_scope["n_params"] == torch_scope["n_params"] == n_params
    for key, value in torch_scope["final"].items():
        np.testing.assert_allclose(ms_scope["final"][key], value, rtol=1e-4 if rtol > 1e-6 else 1e-9,
                                   atol=1e-6 if rtol > 1e-6 else 1e-12, err_msg=key)


# --- the safetensors bridge: minise -> safetensors -> PyTorch twin -> safetensors -> minise ---------------
def _randomise_bn(model):
    """BatchNorm statistics and affine parameters away from 0 / 1, so a swapped key would show."""
    rng = np.random.default_rng(1)
    for name, t in model.state_dict().items():
        if name.endswith(("running_mean", "bias")):
            t.data[...] = rng.uniform(-0.2, 0.2, t.shape)
        elif name.endswith(("running_var", "bn1.weight", "bn2.weight", "bn3.weight")):
            t.data[...] = rng.uniform(0.5, 1.5, t.shape)
        elif name.endswith("num_batches_tracked"):
            t.data[...] = 7


def _round_trip(model, twin, x, tmp_path):
    import safetensors.torch

    torch = torch_or_skip()
    _randomise_bn(model)
    model.eval()
    twin.eval()
    ms.save_safetensors(model.state_dict(), tmp_path / "from_minise.safetensors")
    twin.load_state_dict(safetensors.torch.load_file(str(tmp_path / "from_minise.safetensors")))
    safetensors.torch.save_file(twin.state_dict(), str(tmp_path / "from_torch.safetensors"))
    back = ms.load_safetensors(tmp_path / "from_torch.safetensors")
    for key, value in model.state_dict().items():  # exact, dtypes included
        assert back[key].dtype == value.dtype, key
        np.testing.assert_array_equal(back[key].numpy(), value.numpy(), err_msg=key)
    with ms.no_grad():
        logits = model(ms.tensor(x)).numpy()
    with torch.no_grad():
        expected = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    return back


@pytest.mark.parametrize("name", ["resnet20", "se_resnet20"])
def test_cifar_models_round_trip_through_pytorch_exactly(name, tmp_path):
    torch_or_skip()
    ms.manual_seed(0)
    model = models.get(name)
    twin = torch_twins.torch_resnet(3, reduction=16 if name.startswith("se_") else None)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    _round_trip(model, twin, x, tmp_path)


def test_se_resnet50_round_trips_through_timms_seresnet50_naming(tmp_path):
    """minise's own keys are timm's seresnet50 ones, but for the SE 1x1 convolutions' two trailing axes."""
    import safetensors.torch

    torch = torch_or_skip()
    ms.manual_seed(0)
    model = models.se_resnet50(layout="torchvision")
    _randomise_bn(model)
    model.eval()
    twin = torch_twins.torch_timm_resnet50(se=True).eval()
    ms.save_safetensors(models.to_timm_state_dict(model.state_dict()), tmp_path / "to_timm.safetensors")
    twin.load_state_dict(safetensors.torch.load_file(str(tmp_path / "to_timm.safetensors")))
    safetensors.torch.save_file(twin.state_dict(), str(tmp_path / "seresnet50.safetensors"))
    loaded = models.se_resnet50(weights=tmp_path / "seresnet50.safetensors").eval()
    assert loaded.layout == "torchvision"
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key].numpy(), value.numpy(), err_msg=key)
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    with ms.no_grad():
        logits = loaded(ms.tensor(x)).numpy()
    with torch.no_grad():
        expected = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    # and back out through ms.save_safetensors: the file timm would read, up to the SE weights' shape
    ms.save_safetensors(loaded.state_dict(), tmp_path / "again.safetensors")
    again = safetensors.torch.load_file(str(tmp_path / "again.safetensors"))
    for key, value in twin.state_dict().items():
        np.testing.assert_array_equal(again[key].reshape(value.shape).numpy(), value.numpy(), err_msg=key)


def test_legacy_seresnet50_weights_load_into_the_papers_layout(tmp_path):
    """timm's legacy_seresnet50 (the Caffe port): layer0.*, se_module.*, last_linear.*, stride in conv1,
    ceil-mode pooling; odd input sizes exercise the ceil mode."""
    import safetensors.torch

    torch = torch_or_skip()
    torch.manual_seed(0)
    twin = torch_twins.torch_legacy_seresnet50()
    for m in twin.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    twin.eval()
    path = tmp_path / "legacy_seresnet50.safetensors"
    safetensors.torch.save_file(twin.state_dict(), str(path))
    digest = models.sha256sum(path)
    model = models.se_resnet50(weights=path, sha256=digest).eval()
    assert model.layout == "caffe"
    assert model.num_parameters() == sum(p.numel() for p in twin.parameters()) == 28_088_024
    x = np.random.default_rng(0).standard_normal((1, 3, 65, 63)).astype(np.float32)
    with ms.no_grad():
        logits = model(ms.tensor(x)).numpy()
    with torch.no_grad():
        expected = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert model.layer3[2].se.last_excitation.shape == (1, 1024)

    # the paper's Figure 6 on these weights: excitations per class from a TensorDataset, plotted per stage
    images = np.random.default_rng(2).standard_normal((4, 3, 64, 64)).astype(np.float32)
    loader = data.DataLoader(data.TensorDataset(ms.tensor(images), ms.tensor([0, 1, 0, 1])), batch_size=2)
    exc = excitations_per_class(model, loader, classes=["goldfish", "pug"])
    assert exc.stage_blocks() == ["layer1.2.se", "layer2.3.se", "layer3.5.se", "layer4.2.se"]
    assert exc.means["layer4.2.se"].shape == (2, 2048) and exc.counts.tolist() == [2, 2]
    with torch.no_grad():  # the twin's gates for images 0 and 2 (class 0), averaged
        gates = []
        hook = twin.layer4[2].se_module.sigmoid.register_forward_hook(lambda m, i, o: gates.append(o))
        twin(torch.from_numpy(images[[0, 2]]))
        hook.remove()
    np.testing.assert_allclose(exc.means["layer4.2.se"][0], gates[0].numpy().mean(axis=(0, 2, 3)), atol=1e-5)
    assert viz.plot_excitations(exc, tmp_path / "figure6.png").exists()

    # and back out in the legacy naming: the twin (timm's legacy_seresnet50) takes it strictly, unchanged
    back = models.to_timm_state_dict(model.state_dict(), naming="legacy")
    assert set(back) == set(twin.state_dict())
    for key, value in twin.state_dict().items():
        np.testing.assert_array_equal(back[key], value.numpy(), err_msg=key)

    with pytest.raises(models.WeightsError, match="SHA-256"):
        models.se_resnet50(weights=path, sha256="0" * 64)
    with pytest.raises(models.WeightsError, match="layout"):
        models.se_resnet50(weights=path, layout="torchvision")


def test_resnet50_and_se_resnet50_match_the_papers_table_2(capsys):
    """Table 2: ResNet-50 25.6 M parameters, 3.86 GFLOPs; SE-ResNet-50 28.1 M, 3.87 (multiply-adds, 224x224)."""
    assert models.resnet50().num_parameters() == 25_557_032
    assert main(["summary", "se_resnet50", "--input", "3x224x224", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "total parameters:   28,088,024 (28.09 M)" in out
    assert "MACs per sample:    3,860,488,192 (3.86 G)" in out
    assert "would add 11,038,720 per sample: 3.87 G" in out  # with the SE blocks' squeeze and reweight
    assert main(["summary", "se_resnet50", "--input", "3x224x224", "--layout", "torchvision", "--depth", "0"]) == 0
    assert "(4.09 G)" in capsys.readouterr().out
    assert main(["summary", "resnet50", "--input", "3x224x224", "--depth", "0"]) == 0
    assert "MACs per sample:    3,857,973,248 (3.86 G)" in capsys.readouterr().out
    assert main(["summary", "se_resnet50", "--input", "3x224"]) == 2


def test_minise_export_writes_a_file_pytorch_loads(tmp_path, capsys):
    import safetensors.torch

    torch_or_skip()
    ms.manual_seed(0)
    model = models.se_resnet20()
    ms.save({"format": "minise-checkpoint", "version": 1, "model": {k: v.numpy() for k, v in
                                                                      model.state_dict().items()},
             "config": {"model": "se_resnet20"}}, tmp_path / "best.ckpt")
    assert main(["export", str(tmp_path), str(tmp_path / "out.safetensors")]) == 0
    assert "se_resnet20" in capsys.readouterr().out
    twin = torch_twins.torch_resnet(3, reduction=16)
    twin.load_state_dict(safetensors.torch.load_file(str(tmp_path / "out.safetensors")))
    np.testing.assert_array_equal(twin.layer2[1].se.fc1.weight.detach().numpy(),
                                  model.layer2[1].se.fc1.weight.numpy())
    assert main(["export", str(tmp_path / "missing.ckpt"), str(tmp_path / "x.safetensors")]) == 2
