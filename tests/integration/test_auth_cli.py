"""``vcs token``: the printed token works against the running intake; revoking it shuts it out
within seconds.

The command runs as its own process, as an operator would run it, with only
the environment it is given (or the ``.data/dev.env`` that ``make run`` writes).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.auth import TEST_JWT_SECRET, bearer, office_token
from tests.support.cli import last_line, vcs
from tests.support.requests import request_body
from tests.support.services import StartServices
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_an_issued_office_token_works_against_the_intake_for_its_own_district(
    start_services: StartServices, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    await start_services("intake")

    issued = await vcs(
        "token", "issue", "--office", "4701", cwd=tmp_path, VCS_JWT_SECRET=TEST_JWT_SECRET
    )

    token = last_line(issued)
    assert "office 4701" in issued.stderr
    own = await http.post("/v1/requests", json=request_body("4701"), headers=bearer(token))
    other = await http.post("/v1/requests", json=request_body("4702"), headers=bearer(token))
    assert own.status_code == 202
    assert other.status_code == 403


async def test_beside_make_run_the_secret_comes_from_data_dev_env(
    start_services: StartServices, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    await start_services("intake")
    (tmp_path / ".data").mkdir()
    (tmp_path / ".data" / "dev.env").write_text(f"VCS_JWT_SECRET={TEST_JWT_SECRET}\n")

    issued = await vcs("token", "issue", "--operator", "somsri", "--region", "12", cwd=tmp_path)

    token = last_line(issued)
    assert "region 12" in issued.stderr
    accepted = await http.post("/v1/requests", json=request_body("4801"), headers=bearer(token))
    assert accepted.status_code == 202


async def test_a_revoked_token_gets_401_within_seconds(
    start_services: StartServices,
    http: httpx.AsyncClient,
    tmp_path: Path,
    service_env: dict[str, str],
) -> None:
    await start_services("intake")
    store = {
        "VCS_JWT_SECRET": TEST_JWT_SECRET,
        "VCS_MONGODB_URL": service_env["VCS_MONGODB_URL"],
        "VCS_NAMESPACE": service_env["VCS_NAMESPACE"],
    }
    token = office_token("4701")
    submitted = await http.post("/v1/requests", json=request_body("4701"), headers=bearer(token))
    assert submitted.status_code == 202
    request_id = submitted.json()["request_id"]

    revoked = await vcs("token", "revoke", token, cwd=tmp_path, **store)
    again = await vcs("token", "revoke", token, cwd=tmp_path, **store)

    assert revoked.stdout.startswith("revoked"), revoked.stderr
    assert again.stdout.startswith("already revoked")

    async def refused_now() -> httpx.Response | None:
        answer = await http.get(f"/v1/requests/{request_id}", headers=bearer(token))
        return answer if answer.status_code == 401 else None

    # The intake reads the revocation list at most every 2 s (README: within ~2 s).
    refused = await eventually(refused_now, timeout=10, what="the revoked token refused")
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert "revoked" in refused.json()["detail"]
    fresh = await http.get(f"/v1/requests/{request_id}", headers=bearer(office_token("4701")))
    assert fresh.status_code == 200


async def test_without_a_secret_or_for_an_unknown_office_it_says_why_and_prints_no_token(
    tmp_path: Path,
) -> None:
    no_secret = await vcs("token", "issue", "--office", "4701", cwd=tmp_path)
    unknown = await vcs(
        "token", "issue", "--office", "4799", cwd=tmp_path, VCS_JWT_SECRET=TEST_JWT_SECRET
    )

    assert no_secret.returncode == unknown.returncode == 2
    assert no_secret.stdout == unknown.stdout == ""
    assert "VCS_JWT_SECRET" in no_secret.stderr
    assert "district_code" in unknown.stderr


async def test_a_national_operator_token_acts_for_every_province(
    start_services: StartServices, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    await start_services("intake")

    issued = await vcs(
        "token",
        "issue",
        "--operator",
        "hq",
        "--national",
        cwd=tmp_path,
        VCS_JWT_SECRET=TEST_JWT_SECRET,
    )
    mixed = await vcs(
        "token",
        "issue",
        "--operator",
        "hq",
        "--national",
        "--region",
        "12",
        cwd=tmp_path,
        VCS_JWT_SECRET=TEST_JWT_SECRET,
    )

    token = last_line(issued)
    assert "national: all provinces" in issued.stderr
    for district in ("1001", "4701", "9601"):
        answer = await http.post("/v1/requests", json=request_body(district), headers=bearer(token))
        assert answer.status_code == 202, (district, answer.text)
    assert mixed.returncode == 2
    assert mixed.stdout == ""
    assert "--national" in mixed.stderr


@pytest.mark.parametrize(
    ("who", "hours", "cap"),
    [
        (("--operator", "somsri", "--region", "12"), "12.5", "12 hours"),
        (("--office", "4701"), str(90 * 24 + 1), "90 days"),
    ],
    ids=["operator", "office"],
)
async def test_a_lifetime_over_the_cap_is_refused_at_issue_with_the_reason(
    tmp_path: Path, who: tuple[str, ...], hours: str, cap: str
) -> None:
    refused = await vcs(
        "token", "issue", *who, "--ttl-hours", hours, cwd=tmp_path, VCS_JWT_SECRET=TEST_JWT_SECRET
    )
    at_cap = await vcs(
        "token",
        "issue",
        *who,
        "--ttl-hours",
        str(float(hours) - (0.5 if "--operator" in who else 1)),
        cwd=tmp_path,
        VCS_JWT_SECRET=TEST_JWT_SECRET,
    )

    assert refused.returncode == 2
    assert refused.stdout == ""
    assert f"over the cap of {cap}" in refused.stderr
    assert at_cap.returncode == 0, at_cap.stderr
