"""Attacks: properties on small models the tests build, and FGSM against a reference library."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from compute import cli, datasets
from compute.attacks import ATTACKS, resolve
from compute.attacks.runner import OWN_COLUMNS
from compute import tiles
from compute.attacks.common import distortion, local_sd, reached, sensitivity, smooth_gap, true_gap
from compute.attacks.eot_pgd import eot_pgd
from compute.attacks.pgd import pgd
from compute.attacks.noise import matched_noise
from compute.pixels import to_grid as to_8bit, to_uint8
from compute.attacks.fgsm import fgsm, fgsm_direction, min_flip_eps
from compute.attacks.iaa import iaa
from compute.attacks.lbfgs import bracket_ratio, lbfgs, minimise
from compute.config import AttacksConfig, DataConfig, RunConfig
from compute.metrics import auroc
from compute.models import load_checkpoint


def linear_model(seed=0, n=16, classes=4):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(1), nn.Linear(n, classes)).eval()


@pytest.fixture(scope="module")
def cnn(tiny_run):
    model = load_checkpoint(tiny_run.results_dir / "models" / "cnn-p0.2.pt")
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.fixture(scope="module")
def digits():
    _, test = datasets.load(DataConfig(test_size=1000, test_limit=40))
    return test.floats(slice(None)), test.labels


@pytest.mark.parametrize("name", list(ATTACKS))
def test_every_registered_attack_keeps_the_shared_contract(name, digits, cnn, tmp_path):
    correct = cnn(digits[0]).argmax(1) == digits[1]  # the runner attacks only clean-correct images
    # Every clean-correct digit of the 40: the tiny model resists FGSM on most, and the contract needs successes.
    x, y = digits[0][correct], digits[1][correct]
    n = len(y)
    cfg = getattr(resolve(AttacksConfig(), channels=1), name)
    kappa = 0.6  # the tiny model is rarely confident about anything: a goal it can reach
    result = ATTACKS[name].run(model=cnn, images=x, labels=y, cfg=cfg, kappa=kappa)
    assert result.confident is not None
    for r in [result, result.confident, *result.budgets.values()]:
        assert r.adversarial.shape == x.shape and r.adversarial.dtype == torch.float32
        assert r.adversarial.min() >= 0 and r.adversarial.max() <= 1
        assert r.success.shape == (n,) and r.success.dtype == torch.bool
        assert r.iterations.shape == (n,) and r.iterations.dtype == torch.int64 and (r.iterations >= 0).all()
        assert set(r.columns) <= set(OWN_COLUMNS)
        assert torch.equal(r.adversarial, to_8bit(r.adversarial))  # already 8-bit: what is saved is what was judged
        with torch.no_grad():
            logits = cnn(r.adversarial)
        # Success means the goal is met on the 8-bit image, failure that it is not: misclassified for
        # the minimal point and budgets; a wrong class at probability >= kappa for the confident one.
        assert torch.equal(reached(logits, y, kappa if r is result.confident else None), r.success)
    assert result.success.any() and result.confident.success.any()
    assert (result.confident.success <= result.success).all()  # confidently fooled implies fooled
    # A success is still misclassified after a round trip through the tile writer (8-bit PNG sheets).
    where = tiles.write_sheets(to_uint8(result.adversarial), tmp_path, "adv")
    sheet = np.asarray(Image.open(tmp_path / where["sheet"][0]))
    back = torch.stack([torch.from_numpy(sheet[r * 28:(r + 1) * 28, c * 28:(c + 1) * 28].copy())
                        for c, r in zip(where["sheet_col"], where["sheet_row"])])[:, None].float() / 255
    with torch.no_grad():
        assert torch.equal(cnn(back).argmax(1) != y, result.success)
    # An image's result does not depend on its batch mates.
    for i in (0, 7):
        alone = ATTACKS[name].run(model=cnn, images=x[i:i + 1], labels=y[i:i + 1], cfg=cfg, kappa=kappa)
        for one, many in ((alone, result), (alone.confident, result.confident)):
            assert one.success[0] == many.success[i] and one.iterations[0] == many.iterations[i]
            assert torch.allclose(one.adversarial[0], many.adversarial[i], atol=1e-5)


def test_config_sections_and_cli_choices_come_from_the_registry():
    sections = {f.name for f in dataclasses.fields(AttacksConfig)}
    assert sections == {"enabled", "batch_size", "kappa", "ranking", *ATTACKS}
    assert RunConfig().attacks.enabled == tuple(ATTACKS)
    for name, attack in ATTACKS.items():
        assert isinstance(getattr(RunConfig().attacks, name), attack.config)
    with pytest.raises(SystemExit):
        cli.main(["compute", "--attack", "nonesuch"])
    cfg = cli._config(cli.argparse.Namespace(config=None, out=None, device=None, name=None, seed=None, dataset=None,
                                             data_root=None, download=None, workers=None, ood=None, attack=["iaa", "fgsm"]))
    assert cfg.attacks.enabled == ("iaa", "fgsm")


def test_auroc_matches_its_definition():
    assert auroc(np.array([0.1, 0.2]), np.array([0.3, 0.4])) == 1.0
    assert auroc(np.array([0.3, 0.4]), np.array([0.1, 0.2])) == 0.0
    assert auroc(np.array([0.5, 0.5]), np.array([0.5])) == 0.5
    assert auroc(np.array([0.1, 0.4]), np.array([0.3])) == 0.5
    assert math.isnan(auroc(np.array([]), np.array([0.3])))


def test_fgsm_equals_the_analytic_formula_on_a_linear_model():
    model = linear_model()
    w = model[1].weight.detach()
    x = torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    y = torch.arange(8) % 4
    p = torch.softmax(model(x), 1)
    grad = (p - F.one_hot(y, 4).float()) @ w  # d CE / d x for logits = W x + b
    expected = (x + 0.1 * grad.sign().view_as(x)).clamp(0, 1)
    assert torch.equal(fgsm(model, x, y, 0.1), expected)


def test_fgsm_epsilon_zero_is_the_identity_and_budgets_hold(digits, cnn):
    x, y = digits
    assert torch.equal(fgsm(cnn, x, y, 0.0), x)
    for eps in (0.05, 0.1, 0.3):
        adv = fgsm(cnn, x, y, eps)
        assert adv.min() >= 0 and adv.max() <= 1
        assert (adv - x).abs().max() <= eps + 1e-6
    with pytest.raises(ValueError, match=">= 0"):
        fgsm(cnn, x, y, -0.1)


def test_fgsm_success_never_falls_as_epsilon_rises(digits, cnn):
    x, y = digits
    rates = [float((cnn(fgsm(cnn, x, y, e)).argmax(1) != y).float().mean()) for e in np.linspace(0, 0.4, 9)]
    assert rates == sorted(rates) and rates[-1] > rates[0]
    # Per image on a linear model away from the box edges: once flipped, flipped for every larger epsilon.
    model = linear_model(2)
    x = 0.5 + 0.01 * torch.randn(64, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    y = torch.randint(0, 4, (64,), generator=torch.Generator().manual_seed(4))
    flips = torch.stack([model(fgsm(model, x, y, e)).argmax(1) != y for e in np.linspace(0, 0.45, 10)])
    assert torch.all(flips[1:] >= flips[:-1])


def test_min_flip_eps_brackets_every_flip_to_one_8bit_level(digits, cnn):
    x, y = digits
    direction = fgsm_direction(cnn, x, y)
    eps, passes = min_flip_eps(cnn, x, y, direction, 0.5, grid=16, refine=8)
    found, clean_right = ~torch.isnan(eps), cnn(x).argmax(1) == y
    bracketed = found & clean_right
    assert bracketed.sum() >= 3  # the tiny model resists FGSM on most digits; these few are bracketed exactly
    flipped = lambda e: cnn(to_8bit(x + e.view(-1, 1, 1, 1) * direction)).argmax(1) != y  # noqa: E731
    assert flipped(eps.nan_to_num(0.5))[bracketed].all()  # flips at hi ...
    assert not flipped((eps - 1 / 255).clamp_min(0))[bracketed].any()  # ... and not one level below
    assert torch.allclose(eps[found] * 255, (eps[found] * 255).round(), atol=1e-4)  # whole levels
    for k in range(1, 128):  # no level flips an image reported as never flipping
        assert not flipped(torch.full_like(eps, k / 255))[~found].any()
    assert passes.shape == eps.shape and (passes[clean_right] >= 2).all()  # per image: its own count of passes


def test_fgsm_budgets_hold_after_rounding(digits, cnn):
    x, y = digits
    result = ATTACKS["fgsm"].run(model=cnn, images=x, labels=y, cfg=resolve(AttacksConfig(), 1).fgsm)
    for eps, r in result.budgets.items():
        assert (r.adversarial - x).abs().max() <= eps + 1e-6
        assert (r.adversarial - x).abs().max() >= eps - 1 / 255 - 1e-6


def test_lbfgs_evaluates_c_min():
    # A model that gets every image wrong at every c: the search walks down from c_init to c_min.
    model = nn.Sequential(nn.Flatten(1), nn.Linear(16, 3)).eval()
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
    x, y = torch.full((2, 1, 4, 4), 0.5), torch.zeros(2, dtype=torch.int64)
    r = lbfgs(model, x, y, c_init=1.0, c_factor=10.0, c_min=1e-3, c_max=1e4, bisection_steps=2, iterations=2)
    assert r.success.all()
    assert torch.allclose(r.c, torch.full((2,), 1e-3), rtol=1e-4)


def test_iaa_picks_the_pixels_its_sd_weighted_priority_names():
    # Pixel A has the largest gradient but sits in a nearly flat region; pixel B, with a tenth of the
    # gradient, in a textured one. priority = |grad| * SD picks B; |grad| alone would pick A.
    x = torch.zeros(1, 1, 6, 6)
    x[0, 0, :, :3] = torch.tensor([[0.2, 0.8, 0.2], [0.8, 0.2, 0.8]]).repeat(3, 1)  # checkerboard: SD ~ 0.3
    x[0, 0, :, 3:] = 0.5 + torch.arange(3.0) / 255  # a gentle ramp: SD ~ 0.003, not flat
    a, b = 2 * 6 + 4, 2 * 6 + 1
    model = nn.Sequential(nn.Flatten(1), nn.Linear(36, 2)).eval()
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[1, a], model[1].weight[1, b] = 10.0, 1.0
        model[1].bias.copy_(torch.tensor([10.0, 0.0]))  # class 0 wins, by a margin
    y = torch.zeros(1, dtype=torch.int64)
    r = iaa(model, x, y, k=10, m=1, delta=0.05, d_max=1e6, max_iterations=1)
    moved = torch.nonzero((r.adversarial != x).flatten()).flatten().tolist()
    assert moved == [b]


def test_iaa_keeps_d_within_d_max(digits, cnn):
    x, y = digits
    for d_max in (5.0, 30.0):
        r = iaa(cnn, x, y, k=10, m=10, delta=0.1, d_max=d_max)
        assert torch.all(r.distance <= d_max + 1e-6)
        assert torch.all(distortion(x, r.adversarial)["perceptual_distance"] <= d_max + 1e-3)
        assert torch.equal(r.adversarial, to_8bit(r.adversarial))


def test_lbfgs_result_of_an_image_does_not_depend_on_its_batch(digits, cnn):
    x, y = digits
    batch = lbfgs(cnn, x[:6], y[:6], iterations=5, bisection_steps=2)
    for i in (0, 4):
        alone = lbfgs(cnn, x[i:i + 1], y[i:i + 1], iterations=5, bisection_steps=2)
        assert alone.success[0] == batch.success[i]
        assert torch.allclose(alone.c[0:1].nan_to_num(-1), batch.c[i:i + 1].nan_to_num(-1))
        assert torch.allclose(alone.adversarial[0], batch.adversarial[i], atol=1e-5)
        assert alone.iterations[0] == batch.iterations[i]


def test_lbfgs_chosen_c_is_minimal_within_tolerance(digits, cnn):
    x, y = digits
    x, y = x[:8], y[:8]
    r = lbfgs(cnn, x, y, iterations=8, bisection_steps=3)
    assert r.success.all()
    bracketed = r.c_failed > 0
    assert bracketed.any()
    assert torch.all(r.c[bracketed] / r.c_failed[bracketed] <= bracket_ratio(10.0, 3) * (1 + 1e-6))
    z_fail, _ = minimise(cnn, x[bracketed], r.target[bracketed], r.c_failed[bracketed], 8)
    assert torch.all(cnn(to_8bit(z_fail)).argmax(1) == y[bracketed])  # c_failed really fails, as an 8-bit image
    out = cnn(r.adversarial).argmax(1)
    assert torch.all(out != y)
    assert torch.all(r.adversarial >= 0) and torch.all(r.adversarial <= 1)


def test_local_sd_and_flat_pixels():
    x = torch.zeros(1, 1, 6, 6)
    x[0, 0, 2:4, 2:4] = 1.0
    sd, flat = local_sd(x, 3)
    assert flat[0, 0, 0, 0] and not flat[0, 0, 1, 1] and sd[0, 0, 0, 0] == 0
    patch = x[0, 0, 0:3, 0:3]
    assert sd[0, 0, 1, 1] == pytest.approx(patch.std(unbiased=False).item(), abs=1e-6)
    sen, _ = sensitivity(x)
    assert torch.isinf(sen[flat]).all() and torch.isfinite(sen[~flat]).all()


def test_iaa_never_touches_flat_pixels_and_stops_near_the_budget(digits, cnn):
    x, y = digits
    _, flat = local_sd(x, 3)
    r = iaa(cnn, x, y, k=10, m=10, delta=0.1, d_max=30)
    changed = (r.adversarial - x).abs() > 0
    assert not (changed & flat).any()
    sen, _ = sensitivity(x)
    largest_step = 10 * (26 / 255) * sen.nan_to_num(posinf=0).flatten(1).max(1).values
    assert torch.all(r.distance <= 30 + 1e-6)
    stopped_on_budget = ~r.success
    assert torch.all(r.distance[stopped_on_budget] >= 30 - largest_step[stopped_on_budget] - 1e-4)
    d = distortion(x, r.adversarial)
    assert d["flat_pixels_changed"].sum() == 0
    assert torch.all(d["perceptual_distance"] <= r.distance + 1e-3)  # reversals only lower the final D


def test_iaa_distance_never_decreases_over_iterations(digits, cnn):
    x, y = digits
    x, y = x[:10], y[:10]
    previous = torch.zeros(10)
    for cap in range(1, 12):
        r = iaa(cnn, x, y, d_max=1000, max_iterations=cap)
        assert torch.all(r.distance >= previous - 1e-5)
        previous = r.distance
    assert previous.max() > 0


def test_iaa_success_rises_with_the_budget(digits, cnn):
    x, y = digits
    low = iaa(cnn, x, y, d_max=5).success.float().mean()
    high = iaa(cnn, x, y, d_max=300).success.float().mean()
    assert high >= low and high > 0.5


def test_smooth_gap_obeys_its_bound():
    gen = torch.Generator().manual_seed(0)
    for k in (1.0, 10.0, 100.0):
        probs = torch.softmax(torch.randn(500, 10, generator=gen) * 3, 1)
        t = torch.randint(0, 10, (500,), generator=gen)
        gap, exact = smooth_gap(probs, t, k), true_gap(probs, t)
        assert torch.all(gap <= exact + 1e-6)
        assert torch.all(gap >= exact - math.log(9) / k - 1e-6)


def test_fgsm_matches_adversarial_robustness_toolbox(digits, cnn):
    from art.attacks.evasion import FastGradientMethod
    from art.estimators.classification import PyTorchClassifier

    x, y = digits
    reference = PyTorchClassifier(model=cnn, loss=nn.CrossEntropyLoss(), input_shape=(1, 28, 28), nb_classes=10,
                                  clip_values=(0.0, 1.0), device_type="cpu")
    for eps in (0.05, 0.1, 0.3):
        theirs = FastGradientMethod(reference, eps=eps, norm=np.inf, targeted=False).generate(
            x.numpy(), y=np.eye(10, dtype=np.float32)[y.numpy()])
        ours = fgsm(cnn, x, y, eps).numpy()
        assert np.abs(ours - theirs).max() < 1e-6, eps


def test_the_confident_point_reaches_kappa_on_the_8bit_image(digits, cnn):
    x, y = digits[0][:16], digits[1][:16]
    cfg = resolve(AttacksConfig(), channels=1)
    # The tiny model is never very confident: FGSM's single step reaches 0.4, the iterative attacks more.
    for name, kappas in (("fgsm", (0.4,)), ("lbfgs", (0.4, 0.8)), ("iaa", (0.4, 0.8))):
        for kappa in kappas:
            sure = ATTACKS[name].run(model=cnn, images=x, labels=y, cfg=getattr(cfg, name), kappa=kappa).confident
            with torch.no_grad():
                probs = torch.softmax(cnn(to_8bit(sure.adversarial)), dim=1)
            hit = sure.success
            assert hit.any(), name
            assert (probs[hit].amax(1) >= kappa).all() and (probs[hit].argmax(1) != y[hit]).all(), name


def _plain_pgd(model, x, y, eps, steps):
    """Textbook PGD on the cross-entropy (no random start), for reference."""
    adv, alpha = x.clone(), 2.5 * eps / steps
    for _ in range(steps):
        z = adv.detach().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(F.cross_entropy(model(z), y, reduction="none").sum(), z)
        adv = torch.min(torch.max(adv + alpha * g.sign(), x - eps), x + eps).clamp(0.0, 1.0)
    return to_8bit(adv, x)


def test_the_adaptive_attack_with_dropout_zero_is_plain_pgd(digits, tiny_run):
    model = load_checkpoint(tiny_run.results_dir / "models" / "cnn-p0.2.pt")
    for p in model.parameters():
        p.requires_grad_(False)
    x, y = digits[0][:20], digits[1][:20]
    with_dropout = eot_pgd(model, x, y, 0.2, steps=5, masks=4, entropy_weight=0.0)
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    assert torch.equal(eot_pgd(model, x, y, 0.2, steps=5, masks=4, entropy_weight=0.0, objective="untargeted"),
                       _plain_pgd(model, x, y, 0.2, 5))
    assert torch.equal(pgd(model, x, y, 0.2, steps=5), _plain_pgd(model, x, y, 0.2, 5))  # the registered baseline
    assert not torch.equal(with_dropout, _plain_pgd(model, x, y, 0.2, 5))  # the masks do change the attack
    assert ((with_dropout - x).abs().amax() <= 0.2 + 1e-6)


def _fooling_digits(model, digits, n=24):
    """Digits with half of their labels changed: for those, the model's prediction is "fooled"."""
    x, y = digits[0][:n], digits[1][:n].clone()
    y[::2] = (y[::2] + 1) % 10
    return x, y


def test_the_adaptive_objective_is_the_log_of_the_mc_mean_with_its_entropy_kept_low(digits, tiny_run):
    from compute.attacks.eot_pgd import _objective, image_keys
    from compute.methods.mc_dropout import mc_dropout

    model = load_checkpoint(tiny_run.results_dir / "models" / "cnn-p0.3.pt")
    x, y = _fooling_digits(model, digits)
    k, rows = 6, torch.arange(len(y))
    with mc_dropout(model, image_keys(x), k, "test"):
        got = _objective(model, x, y, k, 1.0, "targeted")
        # The same masks (drawn once per context), computed the plain way.
        probs = torch.softmax(model(x.repeat(k, 1, 1, 1)), dim=1).view(k, len(y), -1)
    mean = probs.mean(0)
    target = mean.masked_fill(F.one_hot(y, 10).bool(), -1.0).argmax(1)  # the MC mean's most likely wrong class
    fooled = mean.argmax(1) != y
    entropy = -(mean * mean.log()).sum(1)
    assert fooled.any() and (~fooled).any()
    assert torch.allclose(got, mean.log()[rows, target] - fooled.float() * entropy, atol=1e-5)
    # A flipped entropy sign, or the mean of the per-pass log-probabilities, would not match:
    assert not torch.allclose(got[fooled], (mean.log()[rows, target] + entropy)[fooled], atol=1e-3)
    assert not torch.allclose(got[~fooled], probs.log().mean(0)[rows, target][~fooled], atol=1e-3)
    untargeted = _objective(model, x, y, k, 0.0, "untargeted")  # fresh context: other masks, so only the form
    assert untargeted.shape == got.shape


def test_each_step_of_the_adaptive_attack_draws_fresh_masks(digits, tiny_run, monkeypatch):
    import compute.methods.mc_dropout as mc

    seeds = []
    real = mc.mc_dropout

    def recording(model, image_ids=None, passes=1, seed=0):
        seeds.append(seed)
        return real(model, image_ids, passes, seed)

    monkeypatch.setattr(mc, "mc_dropout", recording)
    model = load_checkpoint(tiny_run.results_dir / "models" / "cnn-p0.3.pt")
    x, y = digits[0][:8], digits[1][:8]
    eot_pgd(model, x, y, 0.2, steps=4, masks=3)
    assert len(seeds) == 4 and len(set(seeds)) == 4  # one mask context per step, each its own masks


@pytest.mark.parametrize("attack", ["eot_pgd", "pgd"])
def test_pgd_steps_are_projected_onto_the_budget(digits, tiny_run, attack):
    model = load_checkpoint(tiny_run.results_dir / "models" / "cnn-p0.3.pt")
    x, y = digits[0][:16], digits[1][:16]
    step = {"eot_pgd": lambda: eot_pgd(model, x, y, 0.05, steps=4, step_size=0.2, masks=2),
            "pgd": lambda: pgd(model, x, y, 0.05, steps=4, step_size=0.2)}[attack]
    adv = step()  # without the projection, 4 steps of 0.2 would move pixels by up to 0.8
    change = (adv - x).abs().amax()
    assert 0.05 - 1.5 / 255 <= change <= 0.05 + 1e-6


def test_the_noise_control_has_the_stated_norm(digits):
    x = digits[0][:10]
    torch.manual_seed(0)
    adv = to_8bit(x + 0.1 * torch.randn_like(x))
    ids = list(range(10))
    l2 = matched_noise(x, adv, "l2", ids, "lbfgs", seed=0)  # keyed by (seed, image id, attack)
    target = (adv - x).flatten(1).norm(dim=1)
    assert torch.equal(l2, to_8bit(l2))
    assert torch.allclose((l2 - x).flatten(1).norm(dim=1), target, rtol=0.01)
    signs = matched_noise(x, to_8bit(x + 0.2 * torch.sign(torch.randn_like(x)), x), "linf", ids, "fgsm", seed=0)
    change = (signs - x).abs().flatten(1)
    assert torch.allclose(change.amax(1), (to_8bit(x + 0.2, x) - x).abs().flatten(1).amax(1))
    assert torch.equal(matched_noise(x, adv, "l2", ids, "lbfgs", seed=0), l2)  # seeded per image
    assert torch.equal(matched_noise(x[3:4], adv[3:4], "l2", [3], "lbfgs", seed=0), l2[3:4])  # not by its batch
    assert not torch.equal(matched_noise(x, adv, "l2", ids, "lbfgs", seed=1), l2)


def test_an_attack_subset_gives_every_class_its_share_of_a_test_set_stored_class_by_class():
    from compute.attacks.spec import subset_positions
    labels = np.repeat(np.arange(10), 50)  # the embedded sample's test set is stored class by class
    chosen = subset_positions(len(labels), 200)
    assert len(chosen) == len(set(chosen.tolist())) == 200 and chosen.max() < 500
    assert np.bincount(labels[chosen], minlength=10).tolist() == [20] * 10
    assert subset_positions(120, 0).tolist() == list(range(120)) == subset_positions(120, 500).tolist()
