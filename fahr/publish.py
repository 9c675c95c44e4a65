"""``make publish``: put the rendered book on the repository's ``gh-pages`` branch (ghp-import, as Jupyter Book
documents it), after checking that what goes online is what the commit builds and shows no patient.

Refused, with every reason named, when: the book was never rendered, or was rendered from another commit or
from uncommitted changes; the tree has uncommitted changes now; the profile is not ``demo`` or ``paper``; the
privacy scan finds a clinical-cohort face or path in it; or it was built on real data (its clinical cohorts are
patients) and ``allow_clinical`` was not given explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ghp_import

from fahr import privacy
from fahr.core import paths, provenance
from fahr.report import book

PUBLISHABLE = ("demo", "paper")


class PublishRefused(RuntimeError):
    """The book may not be published as it is; the message lists every reason and what to do."""


def refusals(
    profile: str,
    record: dict[str, Any] | None,
    git: dict[str, Any],
    findings: Callable[[], list],
    allow_clinical: bool = False,
) -> list[str]:
    """Every reason not to publish ``profile``'s book, given its build ``record``, the repository's ``git`` state
    and the privacy scan (``findings``, only run when nothing else is wrong, as it takes a while)."""
    reasons = []
    if profile not in PUBLISHABLE:
        reasons.append(f"profile {profile!r} is not published (only {', '.join(PUBLISHABLE)}): its book is a test")
    if record is None:
        reasons.append(f"no rendered book for profile {profile!r}: run `make book PROFILE={profile}` first")
        return reasons
    if git["dirty"]:
        reasons.append("the working tree has uncommitted changes: commit them, rebuild, then publish")
    if record.get("dirty"):
        reasons.append("the book was rendered from uncommitted changes: rebuild it from a clean commit")
    if record.get("commit") != git["commit"]:
        built, now = (str(record.get("commit"))[:10], str(git["commit"])[:10])
        reasons.append(f"the book is older than the commit (built from {built}, the tree is at {now}): "
                       f"run `make book PROFILE={profile}` again")  # fmt: skip
    if record.get("data_source") == "real" and not allow_clinical:
        reasons.append("the book was built on real clinical cohorts (patients): publish it only on purpose, with "
                       "`make publish ALLOW_CLINICAL=1` (fahr publish --allow-clinical)")  # fmt: skip
    if not reasons:
        found = findings()
        if found:
            listed = "; ".join(str(f) for f in found[:5])
            reasons.append(f"the privacy scan found {len(found)} clinical-cohort face(s) or path(s): {listed}")
    return reasons


@contextmanager
def _inside(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def push(html: Path, repo: Path, remote: str, branch: str, message: str) -> None:
    """Commit ``html`` as the whole content of ``branch`` of ``repo`` (with ``.nojekyll``) and push it to
    ``remote``; the working tree and the current branch are not touched."""
    with _inside(repo):
        ghp_import.ghp_import(str(html), mesg=message, remote=remote, branch=branch, push=True, nojekyll=True)


def publish(
    profile: str, remote: str = "origin", branch: str = "gh-pages", allow_clinical: bool = False
) -> dict[str, Any]:
    """Check the book of ``profile`` (``refusals``) and push it to ``branch`` on ``remote``; returns what was
    published. Raises ``PublishRefused`` listing every reason when it may not be."""
    record = book.build_record(profile)
    git = provenance.git_state(paths.REPO)
    reasons = refusals(profile, record, git, lambda: privacy.scan_book(profile), allow_clinical)
    if reasons:
        raise PublishRefused("not published:\n" + "\n".join(f"  - {r}" for r in reasons))
    message = f"Book of profile {profile} at {git['commit'][:10]} ({record['data_source']} data)"
    push(paths.html_dir(profile), paths.REPO, remote, branch, message)
    return {"profile": profile, "commit": git["commit"], "remote": remote, "branch": branch}
