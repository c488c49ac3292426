"""The shipped longer runs (gan_course.pretrained): they load only where they fit, reproduce what their metadata
says, and are as good as the notebooks claim."""

import pytest
import torch

from gan_course import pretrained
from gan_course.metrics import classifier_agreement, course_classifier
from gan_course.models import biggan, sagan
from gan_course.training import Run

CENTRED = {"layout": "centred"}


def _sagan_G(**kw):
    return sagan.Generator(z_dim=128, n_classes=10, ch=kw.get("ch", 16), image_size=32, attn_res=16)


def _biggan_G(**kw):
    return biggan.Generator(z_dim=80, n_classes=10, ch=kw.get("ch", 16), shared_dim=32, image_size=32, attn_res=16)


MODELS = {"07_sagan": _sagan_G, "08_biggan": _biggan_G}
DATA = {"07_sagan": ("shapes", CENTRED), "08_biggan": ("shapes", CENTRED)}
# class agreement of 500 samples with the course classifier must stay well above chance (10%) and above the
# chapters' own CPU-budget runs (07: 40%, 08: 21%); the notebooks print the measured values (86%, 94%)
MIN_AGREEMENT = {"07_sagan": 0.75, "08_biggan": 0.85}


def test_every_recipe_is_shipped_with_its_own_parameters():
    assert pretrained.available() == sorted(pretrained.RECIPES)
    for name, recipe in pretrained.RECIPES.items():
        meta = pretrained.meta(name)
        assert meta["parameters"] == recipe["parameters"], name   # the file was made by the recipe shipped
        assert meta["steps"] == recipe["parameters"]["STEPS"]      # ... trained to the end
        dataset, options = DATA[name]
        assert {k: meta["config"][k] for k in ("dataset", *options)} == {"dataset": dataset, **options}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_load_fills_the_generator_with_the_shipped_weights(name):
    G = MODELS[name]()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    dataset, options = DATA[name]
    meta = pretrained.load(name, G, dataset=dataset, data_options=options)
    assert meta["name"] == name
    shipped = torch.load(pretrained.weights_path(name), weights_only=True)["state_dict"]
    assert all(torch.equal(G.state_dict()[k], shipped[k].to(G.state_dict()[k].dtype)) for k in shipped)
    assert any(not torch.equal(before[k], G.state_dict()[k]) for k in shipped)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_shipped_generators_draw_the_class_asked_for(name):
    torch.manual_seed(0)
    G = MODELS[name]()
    pretrained.load(name, G, dataset="shapes", data_options=CENTRED)
    G.eval()
    z_dim = 128 if name == "07_sagan" else 80
    y = torch.arange(500) % 10
    with torch.no_grad():
        images = G(torch.randn(500, z_dim, generator=torch.Generator().manual_seed(1)), y)
    agreement = classifier_agreement(course_classifier("shapes"), images, y)
    assert agreement >= MIN_AGREEMENT[name], agreement


def test_other_data_or_architecture_is_refused_with_the_reason(capsys):
    with pytest.raises(ValueError, match="trained on .*'layout': 'centred'.*this notebook uses .*'random'"):
        pretrained.load("07_sagan", _sagan_G(), dataset="shapes", data_options={"layout": "random"})
    with pytest.raises(ValueError, match="another architecture"):
        pretrained.load("07_sagan", _sagan_G(ch=8), dataset="shapes", data_options=CENTRED)
    assert pretrained.load("07_sagan", _sagan_G(), dataset="cifar10", required=False) is None
    assert "Skipping the comparison" in capsys.readouterr().out
    with pytest.raises(ValueError, match="Available: 07_sagan, 08_biggan"):
        pretrained.load("99_nothing", _sagan_G(), dataset="shapes")
    with pytest.raises(ValueError, match="Valid names"):
        pretrained.export("99_nothing", "build")


def test_a_recipe_not_exported_yet_is_skipped_only_when_not_required(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)        # nothing shipped
    assert pretrained.load("07_sagan", _sagan_G(), dataset="shapes", data_options=CENTRED, required=False) is None
    assert "python -m gan_course.pretrained 07_sagan" in capsys.readouterr().out
    with pytest.raises(ValueError, match="No shipped checkpoint '07_sagan'"):
        pretrained.load("07_sagan", _sagan_G(), dataset="shapes", data_options=CENTRED)


def test_export_takes_the_runs_generator_and_strips_the_ema_wrapper(tmp_path):
    from gan_course.training import EMA

    G, D = _biggan_G(ch=8), biggan.Discriminator(n_classes=10, ch=8, image_size=32, attn_res=16)
    ema = EMA(G, 0.9)
    ema.update()
    config = {"dataset": "shapes", "layout": "centred"}
    run = Run("08_biggan", {"G": G, "D": D, "G_ema": ema}, {}, config=config, root=tmp_path / "runs" / "08_biggan",
              progress=False, live=False)
    run.step = 12000
    run.save()
    path = pretrained.export("08_biggan", tmp_path, directory=tmp_path / "weights")
    blob = torch.load(path, weights_only=True)
    assert set(blob["state_dict"]) == set(G.state_dict())
    assert blob["meta"]["steps"] == 12000 and blob["meta"]["config"] == config
    assert "08_biggan.pt" in (tmp_path / "weights" / "README.md").read_text()
    fresh = _biggan_G(ch=8)
    fresh.load_state_dict(blob["state_dict"])
