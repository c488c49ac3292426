"""gan_course.data: the embedded datasets (glyphs, glyph pairs, shapes), the real ones, and the errors.

The embedded splits used here are the defaults the chapters use, built once per session into the normal
cache (``data/``) and shared through module-scope fixtures; caching itself is tested in a temporary folder.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from gan_course import data
from gan_course.data import DatasetNotFoundError, glyphs, load, shapes
from gan_course.data.base import TensorImageDataset, to_float

# --- shared builds --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def glyphs_test():
    return load("glyphs", "test")


@pytest.fixture(scope="module")
def glyphs_train():
    return load("glyphs", "train")


@pytest.fixture(scope="module")
def shapes_test():
    return load("shapes", "test")


@pytest.fixture(scope="module")
def pairs_test():
    return load("glyph-pairs", "test")


def assert_image_batch(x, channels, size):
    assert x.dtype == torch.float32
    assert x.shape[-3:] == (channels, size, size)
    assert x.min() >= -1 and x.max() <= 1


# --- registry and descriptions --------------------------------------------------------------------------------


def test_names_lists_embedded_and_real_datasets():
    assert data.names() == ["glyphs", "glyph-pairs", "shapes", "mnist", "fashion-mnist", "cifar10", "folder",
                            "facades", "pix2pix-folder"]


@pytest.mark.parametrize("name", data.names())
def test_info_describes_every_dataset(name):
    spec = data.info(name)
    text = str(spec)
    assert text.startswith(name)
    for size in spec.sizes:
        assert str(size) in text
    for split in spec.splits:
        assert split in text
    for option in spec.options:
        assert option in text
    assert spec.default_size in spec.sizes


def test_glyphs_info_documents_attribute_layout():
    spec = data.info("glyphs")
    assert spec.classes == list(glyphs.CHARACTERS)
    assert "[bold, italic, one-hot family (7)]" in spec.targets["attributes"]
    assert set(spec.options) == {"classes", "target"}


# --- glyphs ------------------------------------------------------------------------------------------------------


def test_glyphs_items_are_float_images_in_range_with_int_labels(glyphs_test):
    assert isinstance(glyphs_test, TensorImageDataset)
    assert len(glyphs_test) == 10_000
    assert glyphs_test.images.dtype == torch.uint8 and glyphs_test.images.shape == (10_000, 1, 28, 28)
    x, y = glyphs_test[0]
    assert_image_batch(x, 1, 28)
    assert y.dtype == torch.int64 and y.ndim == 0
    # white glyph on black: the border is background, every image has ink
    imgs = glyphs_test.images
    assert imgs[:, :, 0, :].float().mean() < 2 and imgs[:, :, :, 0].float().mean() < 2
    assert (imgs.amax((1, 2, 3)) > 200).all()


def test_glyphs_train_is_mnist_sized(glyphs_train):
    assert len(glyphs_train) == 60_000
    assert glyphs_train.images.shape[1:] == (1, 28, 28)


def test_glyphs_classes_are_distinct_balanced_and_avoid_look_alikes(glyphs_test):
    classes = glyphs_test.classes
    assert len(classes) == 20 and len(set(classes)) == 20
    assert classes[:10] == list("0123456789")
    assert not set(classes) & set("OIlSZBG")             # look-alikes of 0, 1, 5, 2, 8, 6
    counts = torch.bincount(glyphs_test.targets, minlength=20)
    assert (counts == 500).all()


def test_glyphs_digits_option_keeps_only_the_ten_digits(glyphs_test):
    digits = load("glyphs", "test", classes="digits")
    assert digits.classes == list("0123456789")
    assert len(digits) == 5_000 and digits.targets.max() == 9
    keep = glyphs_test.targets < 10
    assert torch.equal(digits.images, glyphs_test.images[keep])
    assert torch.equal(digits.attributes, glyphs_test.attributes[keep])


def test_glyphs_attributes_have_documented_shape_and_ranges(glyphs_test):
    a = glyphs_test.attributes
    assert a.dtype == torch.int64 and a.shape == (10_000, 3)
    assert glyphs_test.attribute_names == ("family", "bold", "italic")
    assert a[:, 0].min() == 0 and a[:, 0].max() == len(glyphs.FAMILY_NAMES) - 1
    assert set(a[:, 1].unique().tolist()) == {0, 1} and set(a[:, 2].unique().tolist()) == {0, 1}
    assert glyphs_test.jitter.shape == (10_000, len(glyphs.JITTER_NAMES))


def test_glyphs_attribute_target_is_bold_italic_then_one_hot_family(glyphs_test):
    ds = load("glyphs", "test", target="attributes")
    _, v = ds[3]
    assert v.dtype == torch.float32 and v.shape == (2 + len(glyphs.FAMILY_NAMES),)
    family, bold, italic = glyphs_test.attributes[3].tolist()
    assert v[0] == bold and v[1] == italic
    assert v[2:].sum() == 1 and v[2 + family] == 1
    _, f = load("glyphs", "test", target="family")[3]
    assert f.item() == family


def test_glyphs_are_deterministic_and_rebuild_identically(glyphs_test):
    again = glyphs.build("test", 28)
    assert torch.equal(again["images"], glyphs_test.images)
    assert torch.equal(again["targets"], glyphs_test.targets)
    assert torch.equal(glyphs.render("A7", "serif", seed=3), glyphs.render("A7", "serif", seed=3))


def test_glyphs_train_and_test_splits_differ(glyphs_train, glyphs_test):
    assert not torch.equal(glyphs_train.jitter[:100], glyphs_test.jitter[:100])
    assert not torch.equal(glyphs_train.images[:100], glyphs_test.images[:100])


def test_render_redraws_dataset_samples_and_changes_only_the_style(glyphs_test):
    idx = torch.arange(12)
    for i in idx.tolist():
        family, bold, italic = glyphs_test.attributes[i].tolist()
        char = glyphs_test.classes[glyphs_test.targets[i]]
        x = glyphs.render(char, glyphs.FAMILY_NAMES[family], bold, italic, jitter=glyphs_test.jitter[i])
        assert (x[0] - to_float(glyphs_test.images[i])).abs().max() <= 1.01 / 127.5
    other = glyphs_test.render_as(idx, "mono", bold=True)
    assert other.shape == (12, 1, 28, 28)
    assert not torch.allclose(other, to_float(glyphs_test.images[idx]))


def test_render_accepts_style_spelling_and_defaults_to_no_jitter():
    a = glyphs.render("K", "serif-bold-italic", size=32)
    b = glyphs.render("K", "serif", bold=True, italic=True, size=32, jitter=glyphs.identity_jitter())
    assert a.shape == (1, 1, 32, 32) and torch.equal(a, b)


# --- glyph pairs -------------------------------------------------------------------------------------------------


def test_glyph_pairs_show_the_same_character_with_the_same_jitter(pairs_test):
    assert len(pairs_test) == 2_000
    a, b = pairs_test.get_batch(torch.arange(8))
    assert_image_batch(a, 1, 32)
    assert_image_batch(b, 1, 32)
    chars = [pairs_test.classes[t] for t in pairs_test.targets[:8].tolist()]
    jitter = pairs_test.jitter[:8]
    assert (glyphs.render(chars, "sans", size=32, jitter=jitter) - a).abs().max() <= 1.01 / 127.5
    assert (glyphs.render(chars, "stix-bold-italic", size=32, jitter=jitter) - b).abs().max() <= 1.01 / 127.5
    assert not torch.equal(a, b)


def test_glyph_pairs_styles_are_options(tmp_path, pairs_test):
    other = load("glyph-pairs", "test", root=tmp_path, source="cm", target="mono-bold")
    assert torch.equal(other.targets, pairs_test.targets)           # same characters whatever the styles
    assert other.source == "cm" and other.target_style == "mono-bold"


def test_glyph_pairs_with_two_right_answers(tmp_path, pairs_test):
    two = load("glyph-pairs", "test", root=tmp_path, target="stix-bold-italic", target_or="mono")
    assert torch.equal(two.targets, pairs_test.targets) and torch.equal(two.jitter, pairs_test.jitter)
    assert torch.equal(two.images, pairs_test.images)                 # the inputs a are unchanged
    choice = two.target_choice
    assert two.target_or == "mono" and 0.4 < choice.float().mean() < 0.6  # a fair coin per pair
    assert torch.equal(two.images_b[choice == 0], pairs_test.images_b[choice == 0])
    idx = (choice == 1).nonzero().flatten()[:6]
    chars = [two.classes[t] for t in two.targets[idx].tolist()]
    b = two.get_batch(idx)[1]
    assert (glyphs.render(chars, "mono", size=32, jitter=two.jitter[idx]) - b).abs().max() <= 1.01 / 127.5
    assert torch.equal(load("glyph-pairs", "test", root=tmp_path, target_or="mono").target_choice, choice)
    assert not pairs_test.target_choice.any() and pairs_test.target_or is None
    assert torch.equal(two.subset(choice == 1).target_choice, choice[choice == 1])   # subsets keep it


# --- shapes ------------------------------------------------------------------------------------------------------


def test_shapes_items_are_rgb_float_images_with_shape_labels(shapes_test):
    assert len(shapes_test) == 10_000
    assert shapes_test.images.shape == (10_000, 3, 32, 32) and shapes_test.images.dtype == torch.uint8
    x, y = shapes_test[0]
    assert_image_batch(x, 3, 32)
    assert y.dtype == torch.int64
    assert shapes_test.classes == list(shapes.SHAPES) and len(shapes_test.classes) >= 8
    assert (torch.bincount(shapes_test.targets) == 1_000).all()


def test_shapes_factors_have_documented_layout_and_ranges(shapes_test):
    f = shapes_test.factors
    assert f.dtype == torch.float32 and f.shape == (10_000, 7)
    assert shapes_test.factor_names == ("shape", "hue", "scale", "rotation", "x", "y", "background")
    assert torch.equal(f[:, 0].long(), shapes_test.targets)
    for k, name in enumerate(shapes_test.factor_names[1:], start=1):
        lo, hi = shapes.FACTOR_RANGES[name]
        assert f[:, k].min() >= lo and f[:, k].max() <= hi, name
        assert f[:, k].std() > 0.05 * (hi - lo), name                   # the factor actually varies
    _, v = load("shapes", "test", target="factors")[5]
    assert torch.equal(v, f[5])


def test_shapes_render_is_deterministic_and_reproduces_the_dataset(shapes_test):
    assert torch.equal(shapes.render(shapes_test.factors[:50], 32), shapes_test.images[:50])
    g = torch.Generator().manual_seed(shapes.SEEDS["test"])
    assert torch.equal(shapes.sample_factors(10_000, g), shapes_test.factors)


def test_centred_shapes_fix_position_and_scale_and_keep_the_other_factors(shapes_test):
    centred = load("shapes", "test", layout="centred")
    f, g = centred.factors, shapes_test.factors
    assert torch.equal(centred.targets, shapes_test.targets)
    assert (f[:, 2] == shapes.CENTRED["scale"]).all() and (f[:, 4:6] == 0).all()
    keep = [0, 1, 3, 6]                                                   # shape, hue, rotation, background
    assert torch.equal(f[:, keep], g[:, keep])
    assert torch.equal(shapes.render(f[:20], 32), centred.images[:20])
    with pytest.raises(ValueError, match="random, centred"):
        load("shapes", "test", layout="middle")


def test_shapes_draw_the_shape_colour_on_the_background(shapes_test):
    # the centre pixel of a large, centred square is the shape's colour; a corner is the background grey
    f = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.25]])              # red square on grey 0.25
    img = shapes.render(f, 32)[0].float() / 255
    assert torch.allclose(img[:, 16, 16], torch.tensor([0.95, 0.95 * 0.15, 0.95 * 0.15]), atol=0.01)
    assert torch.allclose(img[:, 0, 0], torch.tensor([0.25, 0.25, 0.25]), atol=0.01)


# --- the fast path --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["glyphs-label", "glyphs-attributes", "shapes-factors", "pairs"])
def test_get_batch_equals_stacked_getitem(which, glyphs_test, shapes_test, pairs_test):
    ds = {"glyphs-label": glyphs_test, "glyphs-attributes": glyphs_test.with_target("attributes"),
          "shapes-factors": shapes_test.with_target("factors"), "pairs": pairs_test}[which]
    idx = torch.tensor([5, 0, 17, 5, 999])
    xb, yb = ds.get_batch(idx)
    items = [ds[i] for i in idx.tolist()]
    assert torch.equal(xb, torch.stack([x for x, _ in items]))
    assert torch.equal(yb, torch.stack([y for _, y in items]))
    assert yb.dtype == items[0][1].dtype


# --- caching ------------------------------------------------------------------------------------------------------


def test_embedded_dataset_is_cached_once_then_read_from_the_file(tmp_path, monkeypatch):
    calls = []
    real_build = shapes.build

    def counting_build(split, size, layout):
        calls.append((split, size, layout))
        return real_build(split, size, layout)

    monkeypatch.setattr(shapes, "build", counting_build)
    first = load("shapes", "test", root=tmp_path)
    path = data.cache_file("shapes", "test", 32, root=tmp_path)
    assert path.exists() and calls == [("test", 32, "random")]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]     # nothing half-written left
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [path.name]

    def failing_build(split, size, layout):
        raise AssertionError("the cache file should have been used")

    monkeypatch.setattr(shapes, "build", failing_build)
    second = load("shapes", "test", root=tmp_path)
    assert torch.equal(first.images, second.images)
    assert torch.equal(first.factors, second.factors)


def test_default_cache_is_the_project_data_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("GAN_COURSE_CACHE", raising=False)
    assert data.cache_file("glyphs", "train", 28).parent == data.cache_dir()
    monkeypatch.setenv("GAN_COURSE_CACHE", str(tmp_path))
    assert data.cache_file("glyphs", "train", 28) == tmp_path / f"glyphs-train-28-v{glyphs.VERSION}.pt"


# --- bad input ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, bad, choices", [
    (dict(name="glyphz"), "glyphz", data.names()),
    (dict(name="glyphs", split="validation"), "validation", ["train", "test"]),
    (dict(name="glyphs", image_size=30), "30", ["28", "32", "64"]),
    (dict(name="shapes", image_size=28), "28", ["32", "64"]),
    (dict(name="glyphs", colour="red"), "colour", ["classes", "target"]),
    (dict(name="glyphs", classes="letters"), "letters", ["all", "digits"]),
    (dict(name="glyphs", target="factors"), "factors", ["label", "attributes", "family"]),
    (dict(name="shapes", target="attributes"), "attributes", ["label", "factors"]),
    (dict(name="glyph-pairs", source="sans-heavy"), "sans-heavy", ["sans", "stix-bold-italic", "cm-mono-italic"]),
    (dict(name="facades", direction="AtoB"), "AtoB", ["label2photo", "photo2label"]),
    (dict(name="mnist", target="attributes"), "target", ["takes no options"]),
])
def test_bad_arguments_raise_value_error_listing_the_choices(kwargs, bad, choices):
    with pytest.raises(ValueError) as err:
        load(**kwargs)
    message = str(err.value)
    assert bad in message
    for choice in choices:
        assert choice in message


def test_bad_glyph_style_or_character_lists_the_choices():
    with pytest.raises(ValueError, match="Valid choices: sans, sans-italic"):
        glyphs.parse_style("comic-sans")
    with pytest.raises(ValueError, match="Valid choices: 0 1 2"):
        glyphs.render("Z")


def test_unknown_target_on_a_dataset_lists_the_choices(shapes_test):
    with pytest.raises(ValueError, match="'label', 'factors'"):
        shapes_test.with_target("hue")


# --- real data: errors without a copy -----------------------------------------------------------------------------


def test_missing_mnist_raises_dataset_not_found_naming_dir_and_glyphs(tmp_path, monkeypatch):
    monkeypatch.delenv("GAN_COURSE_DOWNLOAD", raising=False)
    for download in (False, None):                      # None: no download unless GAN_COURSE_DOWNLOAD=1
        with pytest.raises(DatasetNotFoundError) as err:
            load("mnist", root=tmp_path, download=download)
        assert isinstance(err.value, FileNotFoundError)
        message = str(err.value)
        assert str(tmp_path) in message
        assert "GAN_COURSE_DATA" in message and "download=True" in message
        assert 'load("glyphs"' in message
    assert not (tmp_path / "MNIST").exists()             # nothing was downloaded


def test_missing_cifar_suggests_shapes_and_reads_gan_course_data(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_COURSE_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match=r'load\("shapes"\)') as err:
        load("cifar10", download=False)
    assert str(tmp_path) in str(err.value)


def test_failed_download_is_reported_as_dataset_not_found(tmp_path, monkeypatch):
    import torchvision.datasets

    class Offline:
        def __init__(self, root, train, download):
            raise OSError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "MNIST", Offline)
    with pytest.raises(DatasetNotFoundError, match="download failed: OSError: Name or service not known"):
        load("mnist", root=tmp_path, download=True)


# --- user folders -------------------------------------------------------------------------------------------------


def _save_png(path: Path, rgb):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(path)


def test_image_folder_is_resized_cropped_rgb_in_range(tmp_path):
    for cls in ("cats", "dogs"):
        for i in range(2):
            _save_png(tmp_path / cls / f"{i}.png", np.full((40, 60, 3), 50 + 100 * i, dtype=np.uint8))
    ds = load("folder", root=tmp_path, image_size=32)
    assert len(ds) == 4 and ds.classes == ["cats", "dogs"]
    x, y = ds[3]
    assert_image_batch(x, 3, 32)
    assert y == 1
    with pytest.raises(ValueError, match="needs root="):
        load("folder")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load("folder", root=tmp_path / "nowhere")
    with pytest.raises(DatasetNotFoundError, match="no split folders"):
        load("folder", "test", root=tmp_path)


def test_pix2pix_folder_splits_each_file_into_a_and_b(tmp_path):
    side = np.zeros((16, 32, 3), dtype=np.uint8)
    side[:, :16, 0] = 255                                  # A (left) red
    side[:, 16:, 2] = 255                                  # B (right) blue
    for i in range(3):
        _save_png(tmp_path / "train" / f"{i}.png", side)
    ds = load("pix2pix-folder", root=tmp_path, image_size=64)
    a, b = ds.get_batch(torch.arange(3))
    assert a.shape == b.shape == (3, 3, 64, 64)
    assert (a[:, 0] == 1).all() and (a[:, 2] == -1).all() and (b[:, 2] == 1).all()
    a2, b2 = load("pix2pix-folder", root=tmp_path, image_size=64, direction="BtoA").get_batch(torch.arange(3))
    assert torch.equal(a2, b) and torch.equal(b2, a)
    with pytest.raises(DatasetNotFoundError, match="has: train"):
        load("pix2pix-folder", "test", root=tmp_path)
    small, _ = load("pix2pix-folder", root=tmp_path, image_size=32).get_batch(torch.arange(1))
    assert small.shape == (1, 3, 32, 32)                   # the size of the embedded glyph pairs (chapter 05)


# --- real data from GAN_COURSE_DATA --------------------------------------------------------------------------------

# ``shared_data`` (tests/conftest.py) is $GAN_COURSE_DATA and skips the test when it is not set.


@pytest.mark.realdata
def test_real_mnist_loads_both_splits_in_range(shared_data):
    train, test = load("mnist", download=False), load("mnist", "test", download=False)     # via GAN_COURSE_DATA
    assert len(train) == 60_000 and len(test) == 10_000
    assert train.images.shape[1:] == (1, 28, 28)
    x, y = train.get_batch(torch.arange(256))
    assert x.min() == -1 and x.max() == 1
    assert y[:5].tolist() == [5, 0, 4, 1, 9]                 # the first MNIST training labels
    assert load("mnist", "test", image_size=32, download=False).images.shape == (10_000, 1, 32, 32)


@pytest.mark.realdata
def test_real_facades_pairs_load_with_shapes_and_direction_swap(shared_data):
    l2p = load("facades", root=shared_data, download=False)
    assert len(l2p) == 400 and l2p.images.shape == l2p.images_b.shape == (400, 3, 128, 128)
    a, b = l2p.get_batch(torch.arange(4))
    assert_image_batch(a, 3, 128)
    assert_image_batch(b, 3, 128)
    p2l = load("facades", "test", image_size=64, direction="photo2label", download=False)
    l2p_test = load("facades", "test", image_size=64, download=False)
    assert len(p2l) == 106 and p2l.images.shape == (106, 3, 64, 64)
    assert torch.equal(p2l.images, l2p_test.images_b) and torch.equal(p2l.images_b, l2p_test.images)
