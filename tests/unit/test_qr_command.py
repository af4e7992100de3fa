"""`facility qr`: the units' and buildings' QR codes as the server makes them, and clear
errors for what it cannot make them without."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.auth.public_codes import StatusCodes
from api.auth.tokens import ReportCodes
from facility.site import load_site
from runtime.cli import main
from tests.conftest import DEMO_SITE

SECRET = "qr-secret-" + "y" * 40


def test_it_writes_one_svg_per_unit_and_one_for_the_status_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "codes"
    args = ["qr", "--site", str(DEMO_SITE), "--building", "b03", "--building", "b05",
            "--out", str(out), "--api-secret", SECRET,
            "--api-public-url", "https://estate.example.com/"]  # fmt: skip
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "b03-status.svg", "b03-u1.svg", "b03-u2.svg", "b05-status.svg", "b05-u1.svg", "b05-u2.svg",
    ]  # fmt: skip
    site = load_site(DEMO_SITE)
    unit_code = ReportCodes(SECRET, site.id, ["b03-u1"]).code_for("b03-u1")
    status_code = StatusCodes(SECRET, site.id, ["b03"]).code_for("b03")
    printed = capsys.readouterr().out
    assert f"https://estate.example.com/r/{unit_code}" in printed  # as the server's links
    assert f"https://estate.example.com/s/{status_code}" in printed
    svg = (out / "b03-u1.svg").read_text()
    assert "<svg" in svg
    assert "<title>Building 3 Unit 1</title>" in svg


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--api-secret", SECRET], "api.public_url"),
        (["--api-public-url", "https://e.example"], "api.secret"),
        (["--api-secret", SECRET, "--api-public-url", "https://e.example", "--building", "b99"],
         "no building 'b99'"),
    ],
)  # fmt: skip
def test_what_it_needs_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], says: str
) -> None:
    args = ["qr", "--site", str(DEMO_SITE), "--building", "b03", "--out", str(tmp_path), *extra]
    assert main(args) == 2
    assert says in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_bad_public_url_stops_it_at_start_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["qr", "--site", str(DEMO_SITE), "--building", "b03", "--out", str(tmp_path),
            "--api-secret", SECRET, "--api-public-url", "estate.example.com"]  # fmt: skip
    assert main(args) == 2
    assert "public_url" in capsys.readouterr().err
