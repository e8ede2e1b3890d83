"""CLI ergonomics through the public interface: command order, group help, completion, `mocap init`,
`mocap run --frames/-o`, keypoint exchange on sessions without footage."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from mocap.cli import app
from mocap.cli._base import WORKFLOW
from mocap.config import SessionConfig, load_config

runner = CliRunner()


def _commands_listed(output: str) -> list[str]:
    panel = output[output.index("Commands"):]
    return re.findall(r"^│ (\w+) ", panel, flags=re.M)


def test_help_lists_commands_and_groups_in_workflow_order():
    res = runner.invoke(app, ["--help"], terminal_width=120)
    assert res.exit_code == 0
    listed = _commands_listed(res.output)
    assert {"calibrate", "detect", "viz", "run", "init"} <= set(listed)
    known = [c for c in listed if c in WORKFLOW]
    assert known == sorted(known, key=WORKFLOW.index)  # groups (calibrate, detect, viz) sit among the commands
    sub = _commands_listed(runner.invoke(app, ["detect", "--help"], terminal_width=120).output)
    assert sub == ["run", "import", "export"]  # a group keeps its own order


@pytest.mark.parametrize("group, options", [("detect", ["--force", "--views", "--workers"]),
                                            ("calibrate", ["--board", "--rows", "--square", "--corners"])])
def test_group_help_shows_the_default_commands_options(group, options):
    res = runner.invoke(app, [group, "--help"], terminal_width=200)
    assert res.exit_code == 0
    for option in options:
        assert option in res.output, option
    # the options stay the default command's: the group itself still refuses them before a session
    assert runner.invoke(app, [group, "run" if group == "detect" else "session", "--help"]).exit_code == 0


def test_shell_completion_is_on(monkeypatch):
    import typer.completion

    # --show-completion detects the user's shell from the parent processes, which a CI job may not have
    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: "bash")
    res = runner.invoke(app, ["--show-completion"], prog_name="mocap")
    assert res.exit_code == 0 and "_MOCAP_COMPLETE=complete_bash" in res.output
    env = {"_MOCAP_COMPLETE": "complete_bash", "COMP_WORDS": "mocap cal", "COMP_CWORD": "1"}
    assert runner.invoke(app, [], prog_name="mocap", env=env).output.split() == ["calibrate"]
    for words, completed in (("mocap detect run --fo", "--force"), ("mocap detect session/ --fo", "--force"),
                             ("mocap calibrate session/ --sq", "--square"), ("mocap run session/ --fr", "--frames")):
        env = {"_MOCAP_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": "3"}
        assert runner.invoke(app, [], prog_name="mocap", env=env).output.split() == [completed], words


def test_init_writes_every_key_commented(tmp_path):
    root = tmp_path / "take1"
    res = runner.invoke(app, ["init", str(root)])
    assert res.exit_code == 0, res.output
    assert all((root / d).is_dir() for d in ("videos", "calibration", "output"))
    text = (root / "session.yaml").read_text()
    assert yaml.safe_load(text) is None  # everything commented: the session runs on the defaults
    keys = re.findall(r"^# +(\w+):", text, flags=re.M)
    assert set(keys) == {*(f for f in SessionConfig.__dataclass_fields__), *SessionConfig().board.__dataclass_fields__}
    assert "# square: 0.025  # Side of one square, metres." in text.replace("#   square", "# square")
    # uncommented, the template is a valid session.yaml that says exactly the defaults
    uncommented = "\n".join(line[2:] for line in text.splitlines() if re.match(r"# +\w+:", line))
    assert load_config(SessionConfig, yaml.safe_load(uncommented), "session.yaml") == SessionConfig()
    res = runner.invoke(app, ["init", str(root)])
    assert res.exit_code == 2 and "--force" in res.output
    assert runner.invoke(app, ["init", str(root), "--force"]).exit_code == 0


@pytest.fixture(scope="module")
def fit_session(tmp_path_factory):
    """A 6-frame session of SMPL joints seen by 4 cameras, without footage, and its true motion."""
    from tests.fitting_data import body_spec, joints_spec, keypoints, motion, ring_rig
    from mocap.body.model import load_body
    from mocap.io.calibration_toml import save_rig
    from mocap.io.keypoints_h5 import write_keypoints

    body, spec, rig = load_body(body_spec()), joints_spec(), ring_rig(4)
    truth = motion(6)
    root = tmp_path_factory.mktemp("cli") / "session"
    (root / "output").mkdir(parents=True)
    save_rig(rig, root / "calibration.toml")
    write_keypoints(root / "output" / "keypoints2d.h5", keypoints(body, spec, truth, rig))
    (root / "session.yaml").write_text(yaml.safe_dump({"body": body_spec(), "fps": 30.0,
                                                       "overrides": {"fit": {"iterations": 4}}}))
    return root, body, spec, truth


def test_run_frames_and_output(tmp_path, fit_session):
    """`--frames 2:5` fits session frames 2-4: the file's frame 0 is the truth's frame 2, and says so."""
    from mocap.fitting.params import BodyParams
    from mocap.fitting.solver import BodyPoints
    from mocap.io.smpl_npz import load_sequence
    from mocap.rotations import axis_angle_to_matrix

    root, body, spec, truth = fit_session
    out = tmp_path / "part.npz"
    res = runner.invoke(app, ["run", str(root), "--frames", "2:5", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "--offset 2" in res.output and not (root / "output" / "smpl.npz").exists()
    seq = load_sequence(out)
    assert seq.poses.shape == (3, 24, 3) and seq.meta["first_frame"] == 2
    fitted = BodyParams.from_rotations(axis_angle_to_matrix(torch.as_tensor(seq.poses, dtype=body.dtype)),
                                        torch.as_tensor(np.broadcast_to(seq.betas, (3, 10)).copy(), dtype=body.dtype),
                                        torch.as_tensor(seq.trans, dtype=body.dtype))
    pts = BodyPoints(body, spec)
    err = lambda a, b: float((pts.of(fitted) - pts.of(truth.index(slice(a, b)))).norm(dim=-1).mean())  # noqa: E731
    # measured: 10 mm from frames 2-4 (3 noise-free frames, 4 iterations), 25 mm from 3-5, 60 mm from 0-2
    assert err(2, 5) < 0.015 and err(2, 5) < min(err(1, 4), err(3, 6)) and err(0, 3) > 0.04
    res = runner.invoke(app, ["run", str(root), "--frames", "4:"])  # no -o: a part never replaces smpl.npz
    assert res.exit_code == 0, res.output
    assert load_sequence(root / "output" / "smpl_frames_4-6.npz").meta["first_frame"] == 4
    assert not (root / "output" / "smpl.npz").exists()
    res = runner.invoke(app, ["run", str(root), "--frames", "10:20"])
    assert res.exit_code == 2 and "selects no frame" in res.output


def test_keypoint_exchange_without_footage(tmp_path, fit_session):
    """`detect export` and `detect import -o SESSION` need keypoints and calibration only."""
    import shutil

    from mocap.io.keypoints_h5 import Keypoints2D, read_keypoints, write_keypoints
    from mocap.keypoint_formats import names_of

    root = tmp_path / "s"
    shutil.copytree(fit_session[0], root)
    names = names_of("body25")
    uvc = np.random.default_rng(0).uniform([0, 0, 0.5], [1280, 720, 1], (6, 4, len(names), 3))
    sent = Keypoints2D(("cam0", "cam1", "cam2", "cam3"), uvc, np.tile([0, 0, 1280, 720.0], (6, 4, 1)),
                       np.ones((6, 4), bool), [[1280, 720]] * 4, "body25", names, 30.0)
    write_keypoints(root / "output" / "keypoints2d.h5", sent)
    res = runner.invoke(app, ["detect", "export", str(root), "-o", str(tmp_path / "openpose")])
    assert res.exit_code == 0, res.output
    (root / "output" / "keypoints2d.h5").unlink()
    res = runner.invoke(app, ["detect", "import", str(tmp_path / "openpose"), "--format", "openpose", "-o", str(root)])
    assert res.exit_code == 0, res.output
    kp = read_keypoints(root / "output" / "keypoints2d.h5")
    assert kp.cameras == ("cam0", "cam1", "cam2", "cam3") and kp.num_frames == 6 and kp.fps == 30.0
    assert kp.image_sizes.tolist() == [[1280, 720]] * 4  # from calibration.toml, as there is no footage
    np.testing.assert_allclose(kp.keypoints[..., :2], uvc[..., :2], atol=1e-3)  # OpenPose JSON keeps 3 decimals
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(app, ["detect", str(empty)])  # detection itself still needs footage
    assert res.exit_code == 2 and "no footage found" in res.output


def test_session_without_footage(tmp_path, fit_session):
    """``Session.load(footage=False)``: no views, cameras from session.yaml, image sizes from calibration.toml."""
    from mocap.errors import InputDataError
    from mocap.session import Session

    root = fit_session[0]
    s = Session.load(root, footage=False)
    assert s.views == () and s.num_frames == 0 and s.fps == 30.0 and s.cameras == ()
    assert s.image_sizes() == {f"cam{v}": (1280, 720) for v in range(4)}
    with pytest.raises(InputDataError, match="no footage found"):
        Session.load(root)
    (tmp_path / "session.yaml").write_text("cameras: [cam2, cam0]\n")
    bare = Session.load(tmp_path, footage=False)
    assert bare.cameras == ("cam2", "cam0") and bare.image_sizes() == {}
