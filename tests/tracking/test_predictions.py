"""A run's per-item counts as the report reads them (xlt.tracking.predictions.ItemCounts): an
array per language, the pieces of one item summed, held to what pandas computes from the raw rows."""
import numpy as np
import pandas as pd

from xlt.tracking.predictions import ItemCounts, read_item_counts


def raw_rows():
    """Rows as a job saves them: a piece per window or split sentence, so (lang, row) repeats; `de`
    lacks rows 1 and 4, `ar` is shorter than `de`."""
    rng = np.random.default_rng(0)
    langs = np.array(["de"] * 7 + ["ar"] * 3)
    rows = np.array([0, 2, 2, 3, 5, 5, 5, 0, 1, 1])
    return langs, rows, rng.integers(0, 4, size=(10, 3)).astype(float)


def test_pieces_of_an_item_are_summed_and_untested_rows_are_missing(tmp_path):
    langs, rows, counts = raw_rows()
    path = tmp_path / "test.npz"
    np.savez_compressed(path, lang=langs, row=rows, statistics=np.array(["tp", "fp", "fn"]), selected_stats=counts)
    items = read_item_counts(path)
    plain = pd.DataFrame(counts, columns=["tp", "fp", "fn"]).assign(lang=langs, row=rows).groupby(["lang", "row"]).sum()
    pd.testing.assert_frame_equal(items.frame(), plain)
    assert items.names == ("tp", "fp", "fn") and sorted(items.by_lang) == ["ar", "de"]
    assert items.by_lang["de"].shape == (6, 3) and items.by_lang["ar"].shape == (2, 3)
    assert np.isnan(items.by_lang["de"][[1, 4]]).all() and not np.isnan(items.by_lang["de"][[0, 2, 3, 5]]).any()
    np.testing.assert_array_equal(items.tested("de"), plain.loc["de"].to_numpy())
    assert items.tested("fr").shape == (0, 3)


def test_a_table_and_its_arrays_convert_both_ways():
    langs, rows, counts = raw_rows()
    items = ItemCounts.of_rows(["tp", "fp", "fn"], langs, rows, counts)
    again = ItemCounts.of_frame(items.frame())
    assert again.names == items.names
    for lang in items.by_lang:
        np.testing.assert_array_equal(again.by_lang[lang], items.by_lang[lang])
    assert ItemCounts.of_frame(items.frame().iloc[:0]).frame().empty
