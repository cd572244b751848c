"""The encoder study's table (benchmarks.encoder_study): configurations side by side, margins over popularity."""

from benchmarks.encoder_study import markdown


def test_markdown_puts_the_configurations_side_by_side_with_margins_over_popularity():
    rows = []
    for config, encoder, models, shift in (("member", "enc", 37, 0.0), ("left out", "enc", 36, -0.1)):
        for method, tau in (("rank:coarse", 0.7), ("baseline:popularity", 0.6)):
            rows.append({"config": config, "encoder": encoder, "models": models, "method": method, "n": 19,
                         "weighted_tau": tau + shift, "top1_regret": 0.0})
    text = markdown(rows, command="python -m benchmarks.encoder_study")
    assert "| method | member (enc, 37 models) | left out (enc, 36 models) |" in text
    assert "| rank:coarse | 0.700 | 0.600 |" in text
    assert "| rank:coarse | +0.100 | +0.100 |" in text
    assert "python -m benchmarks.encoder_study" in text
