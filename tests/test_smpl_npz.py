"""AMASS-style sequence files: exact round trips, SMPL-H layout, refusal of bad files, the NaN-frame policy."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mocap.errors import InputDataError
from mocap.io.smpl_npz import SmplSequence, hold_invalid_frames, load_sequence, save_sequence
from tests.tiny_body import random_sequence


@pytest.fixture
def seq() -> SmplSequence:
    s = random_sequence(25, "open_body_neutral", seed=3, fps=59.94)
    return replace(s, extra={"fit_error": np.linspace(0, 1, 25, dtype=np.float32), "views": np.arange(25)},
                   meta={"mocap": "0.1.0", "config": {"fps": 59.94}})


def _same(a: SmplSequence, b: SmplSequence) -> None:
    for name in ("poses", "trans", "betas"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert (a.gender, a.fps, a.surface_model, a.meta) == (b.gender, b.fps, b.surface_model, b.meta)
    assert a.extra.keys() == b.extra.keys()
    for k in a.extra:
        np.testing.assert_array_equal(a.extra[k], b.extra[k])
        assert a.extra[k].dtype == b.extra[k].dtype


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_round_trip_is_exact(tmp_path, seq, suffix):
    path = tmp_path / f"smpl{suffix}"
    save_sequence(path, seq)
    _same(seq, load_sequence(path))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_file_has_amass_keys_and_shapes(tmp_path, seq):
    save_sequence(tmp_path / "s.npz", seq)
    z = np.load(tmp_path / "s.npz")
    assert z["poses"].shape == (25, 72) and z["trans"].shape == (25, 3) and z["betas"].shape == (10,)
    assert str(z["gender"]) == "neutral" and float(z["mocap_framerate"]) == 59.94
    np.testing.assert_array_equal(z["poses"][:, 3:6], seq.poses[:, 1])  # joint 1 = left_hip, AMASS's order


def test_smplh_layout(tmp_path, seq):
    save_sequence(tmp_path / "h.npz", seq, smplh=True)
    z = np.load(tmp_path / "h.npz")
    assert z["poses"].shape == (25, 156)
    np.testing.assert_array_equal(z["poses"][:, :66], seq.poses[:, :22].reshape(25, 66))
    assert not z["poses"][:, 66:].any()
    assert z["betas"].shape == (16,) and not z["betas"][10:].any() and z["dmpls"].shape == (25, 8) and not z["dmpls"].any()
    back = load_sequence(tmp_path / "h.npz")  # SMPL-H files read back as SMPL: hand joints zero
    np.testing.assert_array_equal(back.poses[:, :22], seq.poses[:, :22])
    assert not back.poses[:, 22:].any()
    np.testing.assert_array_equal(back.betas, seq.betas)
    assert "dmpls" not in back.extra


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


def _arrays(seq):
    return {"poses": seq.poses.reshape(len(seq.poses), -1), "trans": seq.trans, "betas": seq.betas,
            "gender": np.array("neutral"), "mocap_framerate": np.array(30.0), "surface_model": np.array("smpl_neutral")}


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("trans"), "lacks the keys trans"),
    (lambda a: a.update(poses=a["poses"][:, :70]), "poses has shape"),
    (lambda a: a.update(trans=a["trans"][:-1]), "trans has shape"),
    (lambda a: a.update(betas=np.ones(16)), "betas has shape"),  # 16 betas read as 10 only when the last 6 are 0
    (lambda a: a.update(gender=np.array("robot")), "gender 'robot'"),
    (lambda a: a.update(mocap_framerate=np.array(0.0)), "mocap_framerate"),
    (lambda a: a.update(surface_model=np.arange(3)), "expected a string"),
    (lambda a: a.update(meta=np.array("{not json")), "Expecting property name"),
])
def test_bad_files_are_refused_with_the_path(tmp_path, seq, change, message):
    arrays = _arrays(seq)
    change(arrays)
    path = _write(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputDataError, match=message) as e:
        load_sequence(path)
    assert str(path) in str(e.value)


def test_unreadable_files(tmp_path, seq):
    with pytest.raises(InputDataError, match="not found"):
        load_sequence(tmp_path / "absent.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputDataError, match="not a readable npz"):
        load_sequence(tmp_path / "junk.npz")
    arrays = _arrays(seq)
    arrays["gender"] = np.array(["neutral"], dtype=object)
    with pytest.raises(InputDataError, match="pickles"):
        load_sequence(_write(tmp_path / "pickled.npz", **arrays))


def test_unwritable_output_and_failed_write_leave_nothing(tmp_path, seq, monkeypatch):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(InputDataError, match="is a file, but a folder is needed"):
        save_sequence(tmp_path / "a_file" / "smpl.npz", seq)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError):
        save_sequence(tmp_path / "out.npz", seq)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_hold_invalid_frames(seq):
    poses, trans = seq.poses.copy(), seq.trans.copy()
    poses[0, 4, 1] = np.nan  # leading invalid frame: takes the first valid one
    trans[7] = np.inf
    poses[8] = np.nan
    filled, held = hold_invalid_frames(replace(seq, poses=poses, trans=trans))
    assert np.flatnonzero(held).tolist() == [0, 7, 8]
    np.testing.assert_array_equal(filled.poses[0], seq.poses[1])
    np.testing.assert_array_equal(filled.poses[7], seq.poses[6])
    np.testing.assert_array_equal(filled.poses[8], seq.poses[6])
    np.testing.assert_array_equal(filled.trans[8], seq.trans[6])
    np.testing.assert_array_equal(filled.poses[9:], seq.poses[9:])
    assert filled.num_frames == seq.num_frames and np.isfinite(filled.poses).all()

    same, held = hold_invalid_frames(seq)
    assert same is seq and not held.any()
    with pytest.raises(InputDataError, match="all 25 frames"):
        hold_invalid_frames(replace(seq, poses=np.full_like(poses, np.nan)))
