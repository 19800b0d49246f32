"""Pictures: the paper's reconstruction layout (originals above their reconstructions), whole or padded blocks."""
import pytest
import torch

from svae.viz import grid, reconstruction_rows


def test_two_rows_of_originals_then_their_reconstructions():
    x, r = torch.zeros(40, 1, 2, 2), torch.ones(40, 1, 2, 2)
    rows = reconstruction_rows(x + torch.arange(40).view(-1, 1, 1, 1), r, nrow=10)
    assert rows.shape[0] == 80
    assert rows[:20, 0, 0, 0].tolist() == list(range(20)) and (rows[20:40] == 1).all()
    assert rows[40:60, 0, 0, 0].tolist() == list(range(20, 40)) and (rows[60:] == 1).all()


def test_a_short_last_block_is_padded_so_each_reconstruction_stays_under_its_original():
    x = torch.arange(1, 13).float().view(-1, 1, 1, 1)  # 12 images
    rows = reconstruction_rows(x, -x, nrow=5)  # blocks of 10: 10 whole, then 2 padded to a row of 5
    assert rows.shape[0] == 10 + 10 + 5 + 5
    tail = rows[20:, 0, 0, 0].tolist()
    assert tail == [11, 12, 0, 0, 0, -11, -12, 0, 0, 0]
    assert grid(rows.clamp(0, 1), nrow=5).size[1] == 6 * 1 + 7 * 2  # 6 rows of 1-pixel images, 2-pixel padding


def test_originals_and_reconstructions_must_pair_up():
    with pytest.raises(ValueError, match="as many reconstructions"):
        reconstruction_rows(torch.zeros(4, 1, 2, 2), torch.zeros(3, 1, 2, 2))
