"""`facility qr`: the QR codes of buildings' units (their report forms) and of the buildings'
status pages, as SVG files to print, without a running server. The codes are the server's
own: the same secret (`api.report_secret`, else `api.secret`) and public address
(`api.public_url`) must be given as the server has them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from api.auth.public_codes import StatusCodes
from api.auth.tokens import ReportCodes
from api.qr import qr_svg
from api.settings import ApiSettings
from facility.portfolio import load_sites
from facility.site import local_id, site_of_id
from runtime.settings.resolve import Resolved
from runtime.settings.tree import SiteSettings


def cmd_qr(args: argparse.Namespace, settings: Resolved) -> int:
    site = load_sites(settings.get(SiteSettings).file)
    api = settings.get(ApiSettings)
    problems = []
    if api.public_url is None:
        problems.append("set api.public_url (--api-public-url): the address residents open")
    if settings.source("api.secret") == "default" and api.report_secret is None:
        problems.append(
            "set api.report_secret or api.secret as the server has it: codes made with "
            "another secret do not open its forms"
        )
    unknown = [b for b in args.building if b not in site.building_by_id]
    if unknown:
        problems.append(
            f"no building {', '.join(map(repr, unknown))} in {site.id} "
            f"(known: {', '.join(site.building_by_id)})"
        )
    if problems:
        for problem in problems:
            print(f"facility qr: {problem}", file=sys.stderr)
        return 2
    assert api.public_url is not None
    base = api.public_url.rstrip("/")
    secret = api.report_secret or api.secret
    units = ReportCodes(secret, site.id, [u.id for b in site.buildings for u in b.units])
    statuses = StatusCodes(secret, site.id, site.building_by_id)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for building_id in args.building:
        building = site.building_by_id[building_id]
        files = [
            (f"{u.id}.svg", f"{base}/r/{units.code_for(u.id)}", u.name) for u in building.units
        ]
        files.append(
            (f"{building.id}-status.svg", f"{base}/s/{statuses.code_for(building.id)}",
             building.name)
        )  # fmt: skip
        for name, url, title in files:
            path = _file_for(out, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(qr_svg(url, title=title), encoding="utf-8")
            print(f"{path}\t{title}\t{url}")
    return 0


def _file_for(out: Path, name: str) -> Path:
    """A portfolio's scoped name (`riverside:b03-u1.svg`) goes in its estate's folder
    (`riverside/b03-u1.svg`): no ':' in file names, one folder per estate to print."""
    site = site_of_id(name)
    return out / name if site is None else out / site / local_id(name)
