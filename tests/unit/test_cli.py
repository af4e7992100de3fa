"""The `facility` command's own behaviour: clear errors, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.rules import DEFAULT_RULE_FILE
from runtime.cli import main
from tests.conftest import DEMO_SITE
from tests.portfolio_sites import ESTATES, write_estates


def test_site_check_summarises_a_good_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["site", "check", str(DEMO_SITE)]) == 0
    out = capsys.readouterr().out
    assert "13 buildings, 27 units, 48 elevator, 51 lighting, 26 gate, 3 pump" in out


def test_site_check_names_file_and_line_of_a_mistake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[site]\nid = "s"\n\n[[buildings]]\nid = "b1"\n\n[[buildings.units]]\nid = "u1"\n'
        'devices = [\n  { id = "d1", kind = "escalator" },\n]\n'
    )
    assert main(["site", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:10: device 'd1' has unknown kind 'escalator'" in err


def test_simulate_refuses_a_bad_injection(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "--site", str(DEMO_SITE), "--inject", "pump-dry-run:gate-north"])
    assert code == 2
    assert "pump-dry-run needs a pump; 'gate-north' is not one" in capsys.readouterr().err


def test_bad_option_values_name_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["api", "--port", "70000"]) == 2
    assert "setting http.port: 70000 is not a port number" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["api", "--port", "eighty"])
    assert "--port: 'eighty' is not a whole number" in capsys.readouterr().err


def test_rules_check_accepts_the_default_pack_with_the_demo_site(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["rules", "check", str(DEFAULT_RULE_FILE), "--site", str(DEMO_SITE)]) == 0
    assert "36 rules for elevator, gate, lighting, pump" in capsys.readouterr().out


def test_rules_check_points_at_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text(
        '[[rules]]\nid = "x"\nkind = "pump"\nwhen = "running and suction < 1"\n'
        'severity = "major"\ntitle = "t"\n'
    )
    assert main(["rules", "check", str(bad)]) == 2
    assert f"{bad}:4: column 21: unknown name 'suction'" in capsys.readouterr().err


def test_gateway_refuses_a_bad_alerts_settings_file_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "alerts.toml"
    bad.write_text('[[notifications]]\ntype = "wecom"\nurl = "http://127.0.0.1/x"\nsecret = "s"\n')
    code = main(
        ["gateway", "--site", str(DEMO_SITE), "--alerts-config", str(bad),
         "--db-url", f"sqlite:///{tmp_path / 'wo.sqlite3'}", "--metrics-port", "0"]
    )  # fmt: skip
    assert code == 2
    assert f"{bad}:4: notifications[0]: wecom has no signing secret" in capsys.readouterr().err


def test_teams_are_managed_from_the_shell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'facility.sqlite3'}"
    assert main(["teams", "add", "roofing", "--db-url", url]) == 0
    assert main(["teams", "add", "roofing", "--db-url", url]) == 2
    assert main(["teams", "add", "Bad Name", "--db-url", url]) == 2
    assert main(["teams", "remove", "plumbing", "--db-url", url]) == 0
    assert main(["teams", "remove", "plumbing", "--db-url", url]) == 2
    capsys.readouterr()
    assert main(["teams", "list", "--db-url", url]) == 0
    listed = capsys.readouterr()
    assert listed.out.split() == [
        "access-control", "electrical", "lift-contractor", "maintenance", "roofing",
    ]  # fmt: skip
    assert main(["teams", "remove", "nope", "--db-url", url]) == 2
    assert "no team 'nope'" in capsys.readouterr().err


def test_site_check_of_a_directory_prints_each_site_and_the_total(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sites = write_estates(tmp_path / "sites")
    assert main(["site", "check", str(sites)]) == 0
    lines = capsys.readouterr().out.splitlines()
    one = "1 buildings, 1 units, 2 elevator, 0 lighting, 0 gate, 1 pump"
    assert lines == [
        *(f"{sites}: site {s!r}: {one}" for s in ESTATES),
        f"{sites}: 3 sites: 3 buildings, 3 units, 6 elevator, 0 lighting, 0 gate, 3 pump",
    ]


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        ("bad-kind", "beta.toml:"),  # a mistake in one file names that file and line
        ("same-id", "site id 'alpha' is already used by alpha.toml"),
        ("empty", "the directory holds no site files"),
    ],
)
def test_site_check_of_a_bad_directory_names_the_mistake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mistake: str, message: str
) -> None:
    sites = tmp_path / "sites"
    if mistake == "empty":
        sites.mkdir()
    else:
        write_estates(sites)
    beta = sites / "beta.toml"
    if mistake == "bad-kind":
        beta.write_text(beta.read_text().replace('kind = "pump"', 'kind = "escalator"'))
    elif mistake == "same-id":
        beta.write_text(beta.read_text().replace('id = "beta"', 'id = "alpha"'))
    assert main(["site", "check", str(sites)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert captured.out == ""
