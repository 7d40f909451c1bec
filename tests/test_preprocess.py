import logging

import numpy as np
import pytest

from s4rec.data.preprocess import prepare, to_sequences
from s4rec.data.readers import DataError, Interactions, read_sequence_text, vocab_path


def table(rows, source="log.csv"):
    """Interactions from (user, item, time) rows; row r sits on line r + 2."""
    users, items, times = zip(*rows, strict=True)
    return Interactions(
        np.array(users, dtype=object),
        np.array(items, dtype=object),
        np.array(times),
        source,
        np.arange(2, len(rows) + 2),
    )


def as_raw(seqs):
    """{raw user: [raw items in order]}, in the Sequences' user order."""
    return {u: [seqs.item_ids[i - 1] for i in seqs[r]] for r, u in enumerate(seqs.user_ids)}


def test_k_core_iterates_until_stable(caplog):
    # z has one interaction; dropping it leaves u3 with one, so u3 goes in a second pass,
    # which leaves x with two interactions (still enough for k=2); a third pass confirms.
    rows = [("u1", "x", 1), ("u1", "y", 2), ("u2", "x", 1), ("u2", "y", 2)]
    rows += [("u3", "x", 1), ("u3", "z", 2)]
    with caplog.at_level(logging.INFO, logger="s4rec.data.preprocess"):
        seqs = to_sequences(table(rows), k_core=2)
    assert as_raw(seqs) == {"u1": ["x", "y"], "u2": ["x", "y"]}
    assert "2-core (3 passes) removed 1 users, 1 items, 2 interactions" in caplog.text


def test_k_core_cascade():
    # Pass 1 drops (u2, c) since c has one row; pass 2 drops (u2, b) since u2 now has one row.
    rows = [("u1", "a", 1), ("u1", "b", 2), ("u2", "b", 1), ("u2", "c", 2)]
    rows += [("u3", "b", 3), ("u3", "d", 1), ("u4", "a", 1), ("u4", "d", 2)]
    seqs = to_sequences(table(rows), k_core=2)
    assert as_raw(seqs) == {"u1": ["a", "b"], "u3": ["d", "b"], "u4": ["a", "d"]}
    # Without (u3, d) the cascade runs three passes and removes everything.
    rows.remove(("u3", "d", 1))
    with pytest.raises(DataError, match="2-core filtering removed every interaction"):
        to_sequences(table(rows), k_core=2)


def test_k_core_empty_result_is_an_error():
    with pytest.raises(DataError, match=r"log\.csv: 5-core filtering removed every interaction"):
        to_sequences(table([("u", "a", 1), ("u", "b", 2)]), k_core=5)


@pytest.mark.parametrize("k", [0, 1])
def test_k_core_disabled(k):
    seqs = to_sequences(table([("u", "a", 1), ("v", "b", 1)]), k_core=k)
    assert as_raw(seqs) == {"u": ["a"], "v": ["b"]}


def test_stable_chronological_order_with_ties():
    rows = [("u", "a", 5), ("u", "b", 3), ("u", "c", 5), ("u", "d", 3), ("u", "e", 4)]
    assert as_raw(to_sequences(table(rows), k_core=0)) == {"u": ["b", "d", "e", "a", "c"]}


def test_float_times_order():
    rows = [("u", "a", 2.5), ("u", "b", 0.5)]
    assert as_raw(to_sequences(table(rows), k_core=0)) == {"u": ["b", "a"]}


def test_ids_users_by_raw_id_items_by_first_appearance():
    rows = [("10", "p", 1), ("9", "q", 2), ("9", "r", 1), ("2", "q", 7), ("10", "r", 0)]
    seqs = to_sequences(table(rows), k_core=0)
    assert seqs.user_ids == ["2", "9", "10"]  # numeric order, not "10" < "2"
    assert seqs.item_ids == ["q", "r", "p"]
    assert [seqs[u].tolist() for u in range(3)] == [[1], [2, 1], [2, 3]]
    assert to_sequences(table([("b", "x", 1), ("a", "x", 1)]), k_core=0).user_ids == ["a", "b"]


def test_duplicates_dropped_with_warning(caplog):
    rows = [("u", "a", 1), ("u", "a", 1), ("u", "b", 2), ("u", "a", 1), ("u", "a", 3)]
    with caplog.at_level(logging.WARNING):
        seqs = to_sequences(table(rows), k_core=0)
    assert as_raw(seqs) == {"u": ["a", "b", "a"]}
    assert "dropped 2 exact duplicate (user, item, time) rows" in caplog.text
    assert caplog.records[0].levelno == logging.WARNING


def test_duplicates_error_names_line():
    rows = [("u", "a", 1), ("u", "b", 2), ("u", "a", 1)]
    with pytest.raises(DataError, match=r"log\.csv:4: duplicate interaction .* repeats line 2"):
        to_sequences(table(rows), k_core=0, duplicates="error")


def test_bad_arguments():
    with pytest.raises(ValueError, match="duplicates"):
        to_sequences(table([("u", "a", 1)]), duplicates="keep")
    with pytest.raises(ValueError, match="k_core"):
        to_sequences(table([("u", "a", 1)]), k_core=-1)


def test_prepare_round_trip_keeps_raw_ids(tmp_path):
    lines = ["user_id,item_id,timestamp"]
    lines += [f"user{u},item{(u + t) % 6},{t}" for u in range(6) for t in range(5)]
    raw = tmp_path / "log.csv"
    raw.write_text("\n".join(lines) + "\n")
    out = tmp_path / "prepared" / "log.txt"
    seqs = prepare(raw, out, k_core=5)
    assert vocab_path(out).exists()
    back = read_sequence_text(out)
    assert back.user_ids == seqs.user_ids == [f"user{u}" for u in range(6)]
    assert back.item_ids == seqs.item_ids
    assert as_raw(back) == as_raw(seqs)
    assert as_raw(back)["user2"] == ["item2", "item3", "item4", "item5", "item0"]
    assert back.source == seqs.source == str(out)


def test_prepare_movielens(tmp_path):
    raw = tmp_path / "ratings.dat"
    raw.write_text("".join(f"{u}::{i}::4::{10 - i}\n" for u in (3, 1) for i in (7, 8)))
    seqs = prepare(raw, tmp_path / "ml.txt", k_core=2)
    assert seqs.user_ids == ["1", "3"]
    assert seqs.item_ids == ["8", "7"]
    assert (tmp_path / "ml.txt").read_text() == "1 1 2\n2 1 2\n"
