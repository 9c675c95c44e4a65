"""``make publish``: the book goes to the gh-pages branch of a local bare remote, and each bad case is refused with
its reason (stale book, dirty tree, smoke profile, privacy finding, real clinical data without the flag)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fahr import cli, publish
from fahr.core import provenance


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    """A committed project with a remote (a local bare repository) and a rendered book beside it."""
    remote, repo = tmp_path / "remote.git", tmp_path / "project"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "test@example.org")
    git(repo, "config", "user.name", "test")
    (repo / "README.md").write_text("project\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "first")
    git(repo, "remote", "add", "origin", str(remote))
    html = tmp_path / "html"
    (html / "chapters").mkdir(parents=True)
    (html / "index.html").write_text("<html>the book</html>")
    (html / "chapters" / "faceage.html").write_text("<html>FaceAge</html>")
    return repo, html


def clean_record(repo: Path, **change) -> dict:
    record = {"profile": "demo", "data_source": "synth", "commit": git(repo, "rev-parse", "HEAD"), "dirty": False}
    return record | change


def reasons(repo: Path, profile: str = "demo", findings=(), allow_clinical: bool = False, **change) -> list[str]:
    record = clean_record(repo, **change)
    return publish.refusals(profile, record, provenance.git_state(repo), lambda: list(findings), allow_clinical)


def test_a_clean_book_is_pushed_to_gh_pages_of_the_remote(project) -> None:
    repo, html = project
    assert reasons(repo) == []
    publish.push(html, repo, "origin", "gh-pages", "Book of profile demo")
    remote = repo.parent / "remote.git"
    files = set(git(remote, "ls-tree", "-r", "--name-only", "gh-pages").splitlines())
    assert files == {".nojekyll", "index.html", "chapters/faceage.html"}
    assert git(remote, "show", "gh-pages:index.html") == "<html>the book</html>"
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"  # the working branch is untouched
    (html / "index.html").write_text("<html>the book, again</html>")
    publish.push(html, repo, "origin", "gh-pages", "again")  # a second publication is a new commit on top
    assert git(remote, "rev-list", "--count", "gh-pages") == "2"


def test_a_book_older_than_the_commit_is_refused(project) -> None:
    repo, _ = project
    record_commit = git(repo, "rev-parse", "HEAD")
    (repo / "README.md").write_text("changed\n")
    git(repo, "commit", "-q", "-am", "second")
    found = reasons(repo, commit=record_commit)
    assert len(found) == 1 and "older than the commit" in found[0] and "make book" in found[0]


def test_a_dirty_tree_and_a_book_from_uncommitted_changes_are_refused(project) -> None:
    repo, _ = project
    (repo / "README.md").write_text("uncommitted\n")
    found = reasons(repo, dirty=True)
    assert any("uncommitted changes: commit" in r for r in found)
    assert any("rendered from uncommitted changes" in r for r in found)


def test_only_the_demo_and_paper_books_are_published(project) -> None:
    repo, _ = project
    assert any("'smoke' is not published" in r for r in reasons(repo, profile="smoke"))
    assert reasons(repo, profile="paper") == []


def test_a_privacy_finding_is_refused_and_named(project) -> None:
    repo, _ = project
    found = reasons(repo, findings=["chapters/saliency.html: clinical photo a-0007 shown"])
    assert len(found) == 1 and "privacy scan" in found[0] and "a-0007" in found[0]


def test_a_book_on_real_clinical_cohorts_needs_the_explicit_flag(project) -> None:
    repo, _ = project
    assert any("ALLOW_CLINICAL=1" in r for r in reasons(repo, data_source="real"))
    assert reasons(repo, data_source="real", allow_clinical=True) == []


def test_no_rendered_book_is_refused(project) -> None:
    repo, _ = project
    found = publish.refusals("demo", None, provenance.git_state(repo), lambda: [])
    assert found == ["no rendered book for profile 'demo': run `make book PROFILE=demo` first"]


def test_the_privacy_scan_only_runs_when_nothing_else_is_wrong(project) -> None:
    repo, _ = project

    def scan() -> list:
        raise AssertionError("the scan ran on a book that is refused anyway")

    assert reasons(repo, profile="smoke", findings=()) and publish.refusals(
        "smoke", clean_record(repo), provenance.git_state(repo), scan
    )


def test_the_cli_refuses_with_exit_code_2_and_names_the_reason(capsys) -> None:
    assert cli.main(["publish", "--profile", "smoke"]) == 2
    assert "'smoke' is not published" in capsys.readouterr().err


def test_the_hosted_workflow_only_calls_make_targets() -> None:
    """What runs on the hosting service is what runs here: every step is a make target (or git identity)."""
    import yaml

    from fahr.core import paths

    workflow = yaml.safe_load((paths.REPO / ".github" / "workflows" / "book.yml").read_text())
    commands = [line.strip() for job in workflow["jobs"].values() for step in job["steps"] if "run" in step
                for line in step["run"].splitlines() if line.strip()]  # fmt: skip
    assert commands and all(c.startswith(("make ", "git config ")) for c in commands), commands
    assert {"make test", "make book", "make publish"} <= set(commands)
