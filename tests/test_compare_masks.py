"""scripts/compare_masks.py: pixel agreement of two mask folders."""

import numpy as np
import pytest

from scripts.compare_masks import main, mask_agreement
from util.image_io import save_palette_png


def write(root, seq, name, labels):
    (root / seq).mkdir(parents=True, exist_ok=True)
    save_palette_png(root / seq / name, np.asarray(labels, dtype=np.uint8))


def test_agreement_counts_equal_pixels(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, "s", "00000.png", [[0, 1], [2, 2]])
    write(b, "s", "00000.png", [[0, 1], [2, 1]])
    write(a, "t", "00000.png", [[1, 1]])
    write(b, "t", "00000.png", [[1, 1]])
    result = mask_agreement(a, b)
    assert result["pixels"] == 6 and result["differing_pixels"] == 1
    assert result["agreement"] == pytest.approx(5 / 6) and result["sequences"] == {"s": 0.75, "t": 1.0}


def test_missing_or_resized_masks_are_one_line_errors(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, "s", "00000.png", [[0, 1]])
    write(a, "s", "00001.png", [[0, 1]])
    write(b, "s", "00000.png", [[0, 1]])
    with pytest.raises(SystemExit) as exc:
        main([str(a), str(b)])
    assert exc.value.code == 2 and "00001.png" in capsys.readouterr().err
    write(b, "s", "00001.png", [[0, 1, 1]])
    with pytest.raises(SystemExit) as exc:
        main([str(a), str(b)])
    assert exc.value.code == 2 and "size" in capsys.readouterr().err
