"""The highway-env simulator: boxes and masks line up with the pixels, files, seeds, bad input."""

import numpy as np
import pytest
import yaml
from PIL import Image

from domains.driving import simulate as simulate_module
from domains.driving.render import MASK_LANE, MASK_ROAD, ROAD_GREY, View, render
from domains.driving.simulate import (
    SimulateOptions,
    _random_color,
    _scene,
    simulate,
    split_counts,
)
from shared.errors import UserError

GROUND = (70, 110, 55)
SMALL = {"image_size": (96, 48), "warmup_steps": (0, 3), "vehicles": (6, 10)}


@pytest.fixture(scope="module")
def scene(monkeypatch_module):
    """A highway-env scene drawn both by `render` and by the env's stock viewer."""
    import gymnasium as gym
    import highway_env  # noqa: F401

    # The stock viewer draws nothing when SDL_VIDEODRIVER is dummy (highway-env's rule).
    monkeypatch_module.delenv("SDL_VIDEODRIVER", raising=False)
    config = {
        "vehicles_count": 20,
        "vehicles_density": 2.0,
        "simulation_frequency": 15,
        "policy_frequency": 15,
        "offscreen_rendering": True,
        "screen_width": 200,
        "screen_height": 100,
        "scaling": 4.0,
        "centering_position": [0.5, 0.5],
    }
    env = gym.make("highway-v0", render_mode="rgb_array", config=config, disable_env_checker=True)
    env.reset(seed=0)
    base = env.unwrapped
    rng = np.random.default_rng(0)
    for vehicle in base.road.vehicles:
        vehicle.color = _random_color(rng)
    for _ in range(20):
        env.step(1)
    frame = render(base.road, View(200, 100, 4.0, tuple(base.vehicle.position)), ground=GROUND)
    stock = env.render()
    env.close()
    return frame, stock


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _classes(image):
    grey = np.all(image == ROAD_GREY, axis=-1)
    white = np.all(image == 255, axis=-1)
    ground = np.all(image == GROUND, axis=-1)
    return grey, white, ground


def _box_area(boxes, shape, margin=0):
    inside = np.zeros(shape, bool)
    for x1, y1, x2, y2 in boxes:
        top, left = max(int(np.floor(y1)) - margin, 0), max(int(np.floor(x1)) - margin, 0)
        inside[top : int(np.ceil(y2)) + margin, left : int(np.ceil(x2)) + margin] = True
    return inside


def test_vehicle_boxes_cover_the_drawn_vehicles(scene):
    frame, _ = scene
    assert frame.image.mean() > 40 and len(np.unique(frame.image.reshape(-1, 3), axis=0)) > 4
    assert len(frame.boxes) >= 2
    grey, white, ground = _classes(frame.image)
    vehicle = ~(grey | white | ground)
    for x1, y1, x2, y2 in frame.boxes:
        # The box's middle half is vehicle colours, not road (a turned car leaves road
        # in the box's corners; measured 1.0 for straight cars, 0.90 for one at 15 deg).
        cx, cy, qw, qh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 4, (y2 - y1) / 4
        inner = vehicle[int(cy - qh) : int(np.ceil(cy + qh)), int(cx - qw) : int(np.ceil(cx + qw))]
        assert inner.mean() > 0.8
        # The drawn body's extent is the box, to 2 px (measured: 0.03 px mean, 1.9 max).
        top, left = max(int(y1) - 4, 0), max(int(x1) - 4, 0)
        ys, xs = np.nonzero(vehicle[top : int(y2) + 4, left : int(x2) + 4])
        drawn = np.array([xs.min() + left, ys.min() + top, xs.max() + left + 1, ys.max() + top + 1])
        assert np.abs(drawn - np.array([x1, y1, x2, y2])).max() <= 2.0
    # No vehicle pixel further than 2 px outside every box (pygame's rotation spills 1 px).
    assert not (vehicle & ~_box_area(frame.boxes, vehicle.shape, margin=2)).any()


def test_mask_matches_the_rendered_road(scene):
    frame, _ = scene
    grey, white, ground = _classes(frame.image)
    outside = ~_box_area(frame.boxes, grey.shape)
    agree = (
        ((frame.mask == MASK_ROAD) == grey)
        & ((frame.mask == MASK_LANE) == white)
        & ((frame.mask == 0) == ground)
    )
    assert outside.mean() > 0.9
    assert agree[outside].mean() > 0.99  # measured 1.0: the same draw calls
    assert set(np.unique(frame.mask)) == {0, 1, 2}


def test_same_transform_as_the_stock_viewer(scene):
    """env.render() (highway-env's own viewer) puts lane lines and vehicles where we do."""
    frame, stock = scene
    assert stock.shape == frame.image.shape and stock.mean() > 40  # not a black frame
    stock_white = np.all(stock == 255, axis=-1)
    stock_vehicle = ~(np.all(stock == ROAD_GREY, axis=-1) | stock_white)
    lane = frame.mask == MASK_LANE
    assert (stock_white & lane).sum() / (stock_white | lane).sum() > 0.97  # measured 1.0
    assert stock_vehicle.sum() > 100
    assert _box_area(frame.boxes, lane.shape)[stock_vehicle].mean() > 0.99  # measured 1.0


def test_simulate_writes_the_yolo_layout(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # black frames from the stock viewer
    out = tmp_path / "sim"
    summary = simulate(out, 5, seed=3, splits=(0.6, 0.2, 0.2), **SMALL)
    assert "simulate" in capsys.readouterr().err  # the progress bar
    assert summary["splits"] == {"train": 3, "val": 1, "test": 1}
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["train"] == "images/train" and data["val"] == "images/val"
    assert data["test"] == "images/test" and data["names"] == {0: "vehicle"}
    assert data["mask_names"] == ["background", "road", "lane_marking"]
    assert data["path"] == str(out.resolve())
    lines = 0
    for split, count in summary["splits"].items():
        stems = sorted(p.stem for p in (out / "images" / split).glob("*.png"))
        assert len(stems) == count
        assert stems == sorted(p.stem for p in (out / "labels" / split).glob("*.txt"))
        assert stems == sorted(p.stem for p in (out / "masks" / split).glob("*.png"))
        for stem in stems:
            image = np.asarray(Image.open(out / "images" / split / f"{stem}.png"))
            mask = np.asarray(Image.open(out / "masks" / split / f"{stem}.png"))
            assert image.shape == (48, 96, 3) and image.mean() > 40
            assert mask.shape == (48, 96) and mask.dtype == np.uint8
            assert set(np.unique(mask)) <= {0, 1, 2} and (mask == MASK_ROAD).any()
            for line in (out / "labels" / split / f"{stem}.txt").read_text().splitlines():
                cls, *box = line.split()
                values = np.array(box, float)
                assert cls == "0" and len(values) == 4
                assert np.all(values >= 0) and np.all(values <= 1) and np.all(values[2:] > 0)
                lines += 1
    assert lines == summary["boxes"] > 0
    assert summary["frames_per_second"] > 0


def test_same_seed_same_bytes(tmp_path):
    def files(root):
        return {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "data.yaml"
        }

    options = dict(SMALL, splits=(1, 0, 0))
    simulate(tmp_path / "a", 3, seed=7, progress=False, **options)
    simulate(tmp_path / "b", 3, seed=7, progress=False, **options)
    simulate(tmp_path / "c", 2, seed=8, progress=False, **options)
    simulate(tmp_path / "d", 1, seed=7, progress=False, **options)
    first, again, other = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert len(first) == 9 and first == again
    image = "images/train/s7_000000.png"
    assert first[image] != other["images/train/s8_000000.png"]
    # A frame does not depend on how many frames were asked for.
    assert files(tmp_path / "d")[image] == first[image]


def test_scenes_vary(tmp_path):
    import gymnasium as gym
    import highway_env  # noqa: F401

    options = SimulateOptions(warmup_steps=(0, 0))
    env = gym.make("highway-v0", disable_env_checker=True)
    lanes, scalings, counts = set(), set(), set()
    for index in range(8):
        road, view = _scene(env, options, np.random.default_rng([0, index]))
        lanes.add(len(road.network.graph["0"]["1"]))
        scalings.add(round(view.scaling, 3))
        counts.add(len(road.vehicles))
    env.close()
    assert len(lanes) >= 2 and lanes <= {2, 3, 4, 5}
    assert len(scalings) == 8 and len(counts) >= 3


def test_split_counts_add_up():
    assert split_counts(10, (0.8, 0.1, 0.1)) == {"train": 8, "val": 1, "test": 1}
    assert split_counts(5, (0.8, 0.1, 0.1)) == {"train": 4, "val": 1, "test": 0}
    assert sum(split_counts(7, (1, 1, 1)).values()) == 7


@pytest.mark.parametrize(
    ("frames", "options", "message"),
    [
        (0, {}, "--frames"),
        (2.5, {}, "--frames"),
        (2, {"lanes_count": (2, 3)}, "did you mean 'lanes'"),
        (2, {"lanes": (5, 2)}, "lanes must be"),
        (2, {"image_size": (8, 8)}, "image_size"),
        (2, {"splits": (0, 0, 0)}, "splits"),
        (2, {"noise_std": -1.0}, "noise_std"),
        (2, {"random_colors": "no"}, "random_colors"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path, frames, options, message):
    with pytest.raises(UserError, match=message) as caught:
        simulate(tmp_path / "out", frames, progress=False, **options)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "out" / "data.yaml").exists()


def test_non_empty_out_dir_needs_overwrite(tmp_path):
    out = tmp_path / "out"
    (out / "images" / "train").mkdir(parents=True)
    (out / "images" / "train" / "stale.png").write_bytes(b"old")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="overwrite"):
        simulate(out, 1, progress=False, **SMALL)
    assert (out / "images" / "train" / "stale.png").exists()
    simulate(out, 1, overwrite=True, progress=False, **SMALL)
    assert not (out / "images" / "train" / "stale.png").exists()
    assert (out / "notes.txt").read_text() == "mine" and (out / "data.yaml").exists()


def test_a_crash_leaves_no_data_yaml(tmp_path, monkeypatch):
    out = tmp_path / "out"
    simulate(out, 1, progress=False, **SMALL)
    calls = {"n": 0}
    real = simulate_module.render_frame

    def crash_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulator died")
        return real(*args, **kwargs)

    monkeypatch.setattr(simulate_module, "render_frame", crash_on_second)
    with pytest.raises(RuntimeError):
        simulate(out, 3, overwrite=True, progress=False, **SMALL)
    assert not (out / "data.yaml").exists()  # the old one went first, no new one written
    assert len(list((out / "images").rglob("*.png"))) == 1
