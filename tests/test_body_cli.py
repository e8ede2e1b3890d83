import numpy as np
from typer.testing import CliRunner

from mocap.body.model import load_body
from mocap.cli import app

runner = CliRunner()


def test_body_export_pickle_reloads_to_the_same_body(tmp_path):
    result = runner.invoke(app, ["body", "export", "open", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    a, b = load_body("open"), load_body(tmp_path / "SMPL_NEUTRAL.pkl")
    rng = np.random.default_rng(0)
    pose = rng.normal(scale=0.3, size=(2, 23, 3))
    betas = rng.normal(size=(2, 10))
    va = a(np.zeros((2, 3)), pose, betas).vertices.detach().numpy()
    vb = b(np.zeros((2, 3)), pose, betas).vertices.detach().numpy()
    np.testing.assert_allclose(vb, va, atol=1e-6)


def test_body_show_writes_a_picture(tmp_path):
    out = tmp_path / "body.png"
    result = runner.invoke(app, ["body", "show", "open", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000


def test_body_show_unknown_keypoint_format_is_a_user_error(tmp_path):
    result = runner.invoke(app, ["body", "show", "open", "--out", str(tmp_path / "b.png"), "--keypoints", "foo"])
    assert result.exit_code == 2 and "error:" in result.output
