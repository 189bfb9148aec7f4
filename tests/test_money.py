"""Money parsing, formatting and rounding: exact, integer, no floats."""

from __future__ import annotations

from fractions import Fraction

import pytest

from chalicelib.money import InvalidAmount, format_micros, parse_micros, parse_rate, round_half_up


@pytest.mark.parametrize(
    ("text", "micros"),
    [("8.03", 8_030_000), ("16.06", 16_060_000), ("299.99", 299_990_000), ("4.35", 4_350_000), ("0.0075", 7_500), ("20", 20_000_000)],
)
def test_parse_decimal_text_exactly(text: str, micros: int) -> None:
    assert parse_micros(text) == micros


def test_every_cent_from_5_to_300_parses_exactly() -> None:
    mismatches = [
        cents for cents in range(500, 30_001) if parse_micros(f"{cents // 100}.{cents % 100:02d}") != cents * 10_000
    ]
    assert mismatches == []


def test_hundred_one_cent_charges_total_one_unit() -> None:
    assert sum(parse_micros("0.01") for _ in range(100)) == 1_000_000


@pytest.mark.parametrize("text", ["", "abc", "1e3", "1.0000001", " ", "--1", "1,00", "NaN", "Infinity", "0x10"])
def test_parse_rejects_non_decimal_text(text: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_micros(text)


def test_parse_rejects_negative_unless_allowed() -> None:
    with pytest.raises(InvalidAmount):
        parse_micros("-1.00")
    assert parse_micros("-1.00", allow_negative=True) == -1_000_000


def test_parse_rejects_float_input() -> None:
    with pytest.raises(InvalidAmount):
        parse_micros(8.03)  # type: ignore[arg-type]


@pytest.mark.parametrize(("micros", "text"), [(7_500, "0.0075"), (20_000_000, "20.00"), (-200_000, "-0.20"), (1, "0.000001")])
def test_format_micros(micros: int, text: str) -> None:
    assert format_micros(micros) == text


def test_format_rejects_float() -> None:
    with pytest.raises(TypeError):
        format_micros(1.5)  # type: ignore[arg-type]


def test_storage_rate_is_exact_below_a_micro_unit() -> None:
    rate = parse_rate("0.0000555")

    assert rate == Fraction(111, 2)
    assert round_half_up(rate * 10**10 / 10**9) == 555
    assert round_half_up(rate * 10**12 * 730 / 10**9) == 40_515_000


def test_round_half_up_goes_away_from_zero() -> None:
    assert round_half_up(Fraction(5, 2)) == 3
    assert round_half_up(Fraction(-5, 2)) == -3
    assert round_half_up(Fraction(49, 20)) == 2
