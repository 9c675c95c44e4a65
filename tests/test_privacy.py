"""The privacy scan: a clinical-cohort face shown in the book is found and named, a resized one too, a clinical
path in any text is found; age-cohort faces, population means of clinical faces and plain plots are not flagged.

The smoke cohorts clinical-a, clinical-b (500 patients) and age are rendered once into a temporary artifacts
folder (about 15 s); each figure scanned below takes one to two seconds.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from fahr import privacy  # noqa: E402
from fahr.core import config, paths
from fahr.data import align  # noqa: E402
from fahr.data.photo import Face  # noqa: E402
from fahr.data.synth import cohorts  # noqa: E402
from fahr.report.figures import common, faces  # noqa: E402


def leaked_grid(images: list, labels: list[str], columns: int, scale: float = 1.35) -> plt.Figure:
    """A face grid drawn past the book's face writer (plain matplotlib): what the scan, the second line, must
    catch if code ever bypassed the first."""
    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(scale * columns, scale * 1.18 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, label in zip(axes.ravel(), images, labels, strict=False):
        ax.imshow(img)
        ax.set_title(label, fontsize=7, pad=2)
    fig.tight_layout(pad=0.3)
    return fig


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """(artifacts folder, clinical index, clinical manifest, age manifest) of the smoke profile."""
    artifacts = tmp_path_factory.mktemp("artifacts")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FAHR_ARTIFACTS", str(artifacts))
        cohorts.build(config.load("smoke", {}), cohorts=("clinical-a", "clinical-b", "age"), progress=False)
        clinical = [cohorts.load("smoke", name)[0] for name in privacy.CLINICAL_COHORTS]
        yield artifacts, privacy.clinical_faces("smoke"), clinical, cohorts.load("smoke", "age")[0]


pytestmark = pytest.mark.slow  # every test here reads the smoke cohorts rendered by the fixture above


def photos(table, rows) -> list[np.ndarray]:
    return [align.read_image(table["path"].iloc[i]) for i in rows]


def png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def html_page(folder: Path, name: str, images: list[bytes], text: str = "") -> Path:
    """A page like the book's: the figures inline as data URIs (what ``jupyter-book`` writes for some outputs)."""
    tags = "".join(f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(b).decode()}"/>' for b in images)
    page = folder / name
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(f"<html><body><h1>A chapter</h1><p>{text}</p>{tags}</body></html>\n")
    return page


def test_a_clinical_face_among_age_faces_in_a_figure_is_found_and_named(smoke, tmp_path) -> None:
    _, index, (clinical_a, _), age = smoke
    faces = photos(age, range(13))
    faces.insert(9, photos(clinical_a, [17])[0])
    figure = png(leaked_grid(faces, [f"face {i}" for i in range(14)], columns=7))  # ~130 px thumbnails
    page = html_page(tmp_path / "html" / "chapters", "cohorts.html", [figure])
    findings = privacy.scan_images(privacy.book_images(tmp_path / "html"), index)
    assert [(f.kind, f.what) for f in findings] == [("face", clinical_a["image_id"].iloc[17])], findings
    assert str(page) in findings[0].where and "embedded image 0" in findings[0].where
    assert findings[0].similarity >= privacy.THRESHOLD
    x, y, w, h = findings[0].box  # the tenth thumbnail: second row, third column
    assert w == h and 100 < w < 160 and y > 150 and 200 < x < 450


def test_a_resized_clinical_face_is_found_in_a_file_and_as_jpeg(smoke, tmp_path) -> None:
    _, index, (_, clinical_b), _ = smoke
    photo = Image.fromarray(photos(clinical_b, [5])[0])
    canvas = Image.new("RGB", (320, 180), "white")
    canvas.paste(photo.resize((100, 100), Image.BICUBIC), (40, 30))  # 64 → 100 px
    (tmp_path / "_images").mkdir()
    canvas.save(tmp_path / "_images" / "figure.png")
    canvas.save(tmp_path / "_images" / "figure.jpg", quality=90)
    findings = privacy.scan_images(privacy.book_images(tmp_path), index)
    assert sorted(Path(f.where).name for f in findings) == ["figure.jpg", "figure.png"], findings
    assert {f.what for f in findings} == {clinical_b["image_id"].iloc[5]}
    assert all(abs(f.box[0] - 40) <= 3 and abs(f.box[2] - 100) <= 5 for f in findings)


def test_the_same_photo_and_other_people_are_far_apart_around_the_threshold(smoke) -> None:
    """The measurement behind THRESHOLD, in small: ten clinical photos among age faces at 80 px; every verified
    place reports its best photo, so look-alike clinical photos and age faces show their similarity too."""
    _, index, (clinical_a, clinical_b), age = smoke
    shown = photos(clinical_a, [3, 40, 77, 120, 250]) + photos(clinical_b, [1, 60, 99, 150, 199])
    truth = list(clinical_a["image_id"].iloc[[3, 40, 77, 120, 250]]) + list(
        clinical_b["image_id"].iloc[[1, 60, 99, 150, 199]]
    )
    faces = [f for pair in zip(shown, photos(age, range(20, 30)), strict=True) for f in pair]
    rgb = privacy.decode(png(leaked_grid(faces, [""] * len(faces), columns=5, scale=0.85)))
    matches = privacy.find_faces(rgb, index, threshold=-1.0)
    same = [m.similarity for m in matches if m.image_id in truth]
    other = [m.similarity for m in matches if m.image_id not in truth]
    print(f"same photo {min(same):.3f}–{max(same):.3f}; others (n={len(other)}) at most {max(other, default=0):.3f}")
    assert sorted(m.image_id for m in matches if m.image_id in truth) == sorted(truth)
    assert min(same) >= privacy.SAME_PHOTO_MIN - 0.03 and min(same) > privacy.THRESHOLD + 0.05
    assert max(other, default=0.0) < privacy.THRESHOLD - 0.05


def test_age_faces_plain_plots_and_population_means_are_not_flagged(smoke, tmp_path) -> None:
    _, index, (clinical_a, clinical_b), age = smoke
    grid = png(leaked_grid(photos(age, range(40, 61)), [f"{i}" for i in range(21)], columns=7))
    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    axes[0].plot(np.cumsum(rng.normal(size=200)))
    axes[1].hist(rng.normal(size=500), bins=30)
    plot = png(fig)
    means = []
    for table, n in ((clinical_a, 16), (clinical_b, 64)):
        rows = rng.choice(len(table), n, replace=False)
        mean = np.mean([p.astype(np.float32) for p in photos(table, rows)], axis=0).round().astype(np.uint8)
        closest = max(
            privacy.similarity(mean, 0, 0, mean.shape[0], t)
            for t in index.templates[np.isin(index.image_ids, table["image_id"].iloc[rows])]
        )
        assert closest < privacy.MEAN_MAX + 0.1, closest  # the mean against each of its own members
        means.append(mean)
    fig, axes = plt.subplots(1, 2, figsize=(4.2, 2.4))
    for ax, mean in zip(axes, means, strict=True):
        ax.imshow(mean)
        ax.axis("off")
    averages = png(fig)  # like the cohorts chapter's "mean of all clinical-a photos"
    html_page(tmp_path, "page.html", [grid, plot, averages], text="the clinical-a cohort, averaged")
    assert privacy.scan_images(privacy.book_images(tmp_path), index) == []


def test_notebook_image_outputs_are_scanned(smoke, tmp_path) -> None:
    _, index, (clinical_a, _), age = smoke
    faces = photos(age, range(3)) + photos(clinical_a, [200])
    figure = png(leaked_grid(faces, ["a", "b", "c", "d"], columns=4))
    notebook = {"cells": [{"cell_type": "markdown", "source": "# Cohorts"},
                          {"cell_type": "code", "source": "grid", "outputs": [
                              {"output_type": "display_data",
                               "data": {"image/png": base64.b64encode(figure).decode(), "text/plain": "<Figure>"}}]}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}  # fmt: skip
    (tmp_path / "cohorts.ipynb").write_text(json.dumps(notebook))
    findings = privacy.scan_images(privacy.book_images(tmp_path), index)
    assert [(f.what, f.where.endswith("cell 1 output 0 (image/png)")) for f in findings] == [
        (clinical_a["image_id"].iloc[200], True)
    ]


def test_clinical_paths_and_file_names_in_text_are_found_and_nothing_else(smoke, tmp_path) -> None:
    artifacts, _, (clinical_a, clinical_b), age = smoke
    photo = clinical_a["path"].iloc[7]  # absolute
    (tmp_path / "a.html").write_text(f"<p>first line</p>\n<p>loaded {photo}</p>\n")
    (tmp_path / "b.ipynb").write_text(
        json.dumps({"cells": [{"outputs": [{"text": "reading synth/clinical-b/images\n"}]}]})
    )
    name = Path(clinical_b["path"].iloc[3]).name
    (tmp_path / "c.js").write_text(f'var files = ["x.png", "{name}"];\n')
    (tmp_path / "d.csv").write_text(f"folder\n{artifacts / 'smoke' / 'synth' / 'clinical-a'}\n")
    (tmp_path / "clean.html").write_text(
        f"<p>the clinical-a and clinical-b cohorts, 500 patients; {age['path'].iloc[0]}; cla-000007 alone</p>\n"
    )
    found = {
        (Path(f.where.rsplit(":", 1)[0]).name, f.where.rsplit(":", 1)[1], f.what)
        for f in privacy.scan_text(tmp_path, "smoke")
    }
    assert found == {
        ("a.html", "2", photo),
        ("b.ipynb", "1", "synth/clinical-b/images"),  # the JSON's "\n" is not part of it
        ("c.js", "1", name),
        ("d.csv", "2", str(artifacts / "smoke" / "synth" / "clinical-a")),
    }


def test_scan_book_and_its_command_report_a_clinical_face_and_exit_1(smoke, monkeypatch) -> None:
    artifacts, _, (clinical_a, _), age = smoke
    monkeypatch.setenv("FAHR_ARTIFACTS", str(artifacts))
    html, chapters = paths.html_dir("smoke"), paths.book_dir("smoke") / "chapters"
    html_page(html / "chapters", "faceage.html", [png(leaked_grid(photos(age, range(4)), list("abcd"), columns=4))])
    chapters.mkdir(parents=True)
    notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (chapters / "faceage.ipynb").write_text(json.dumps(notebook))
    assert privacy.scan_book("smoke") == []
    faces = photos(age, range(3)) + photos(clinical_a, [42])
    html_page(html / "chapters", "survival.html", [png(leaked_grid(faces, list("abcd"), columns=4))])
    command = [sys.executable, "-m", "fahr.privacy", "--profile", "smoke"]
    flagged = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "FAHR_ARTIFACTS": str(artifacts)}
    )
    assert flagged.returncode == 1, flagged.stdout + flagged.stderr
    lines = flagged.stdout.splitlines()
    assert (
        len(lines) == 1
        and "survival.html embedded image 0: clinical photo " + clinical_a["image_id"].iloc[42] in lines[0]
    )
    assert "1 privacy findings" in flagged.stderr


def _transformed(photo: np.ndarray) -> dict[str, np.ndarray]:
    """What a figure function could plausibly make of one photo."""
    grey = photo.mean(-1)
    return {
        "as is": photo, "flipped": photo[:, ::-1], "grey": grey, "colour map": plt.get_cmap("inferno")(grey / 255),
        "cropped to 90 %": photo[3:-3, 3:-3], "brightened": np.clip(photo * 1.3, 0, 255).astype(np.uint8),
        "rotated": np.rot90(photo), "blurred": (photo.astype(float) + np.roll(photo, 1, axis=0)) / 510,
    }  # fmt: skip


def test_the_face_writer_refuses_a_clinical_image_of_too_few_patients_whatever_it_looks_like(smoke) -> None:
    """Privacy by construction: the writer judges what an image was made from, not how it looks."""
    photo = photos(smoke[2][0], [0])[0]  # a clinical-a patient's photo
    least = faces.min_people()
    for name, pixels in _transformed(photo).items():
        for people in (1, least - 1):
            with pytest.raises(faces.PrivacyRefused, match=f"{people} patient"):
                common.face_grid([Face(pixels, "clinical-a", 1 if people == 1 else people)], [name], columns=1)
        plt.close("all")
    with pytest.raises(TypeError, match="fahr.data.photo.Face"):  # raw pixels carry no provenance: refused too
        common.face_grid([photo], ["raw"], columns=1)
    shown = common.face_grid([Face(photo, "clinical-b", least), Face(photo, "age", 1)], ["mean", "age"], columns=2)
    assert len(shown.axes) == 2  # an average of enough patients, and an age-cohort face, are shown
    plt.close("all")


def test_every_face_image_of_the_book_goes_through_the_one_face_writer(tmp_path) -> None:
    """No module of fahr/ but fahr/report/figures/faces.py, and no chapter's code, draws pixels any other way; the
    scan (and so ``fahr publish``) reports a chapter that does."""
    offenders = []
    for path in sorted((paths.REPO / "fahr").rglob("*.py")):
        if path.name == "faces.py" and path.parent.name == "figures":
            continue
        offenders += [f"{path.relative_to(paths.REPO)}:{n}" for n, _ in privacy.pixel_writers(path.read_text())]
    offenders += [str(f) for f in privacy.writer_bypasses(paths.REPO / "notebooks")]
    assert offenders == [], offenders
    code = "%matplotlib inline\nax.imshow(x)\nplt.imsave('a.png', x)\ndisplay(IPython.display.Image(b))"
    assert privacy.pixel_writers(code) == [(2, "imshow"), (3, "imsave"), (4, "Image")]  # the reader finds them
    notebook = {"cells": [{"cell_type": "code", "source": ["fig, ax = plt.subplots()\n", "ax.imshow(face)"]}]}
    (tmp_path / "chapter.ipynb").write_text(json.dumps(notebook))
    (found,) = privacy.writer_bypasses(tmp_path)
    assert found.kind == "bypass" and "cell 0 line 2" in str(found) and "past the face writer" in str(found)


def test_every_encoding_and_format_a_browser_shows_is_searched(smoke, tmp_path) -> None:
    """The issue's misses: upper-case and percent-encoded data URIs, an SVG wrapping an image, .jfif, .ico and
    suffix-less files, and a mirrored photo."""
    _, index, (_, clinical_b), _ = smoke
    photo = Image.fromarray(photos(clinical_b, [5])[0])
    canvas = Image.new("RGB", (320, 180), "white")
    canvas.paste(photo.resize((100, 100), Image.BICUBIC), (40, 30))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    site = tmp_path / "site"
    site.mkdir()
    (site / "upper.html").write_text(f'<img src="DATA:IMAGE/PNG;BASE64,{encoded}">')
    quoted = encoded.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    (site / "quoted.html").write_text(f'<img src="data:image/png;base64,{quoted}">')
    svg = f'<svg xmlns="http://www.w3.org/2000/svg"><image href="data:image/png;base64,{encoded}"/></svg>'
    wrapped = base64.b64encode(svg.encode()).decode()
    (site / "wrapped.css").write_text(f"a {{ background: url(data:image/svg+xml;base64,{wrapped}) }}")
    canvas.save(site / "figure.jfif", format="JPEG", quality=92)
    canvas.save(site / "noname", format="PNG")
    canvas.transpose(Image.FLIP_LEFT_RIGHT).save(site / "mirrored.png")
    findings = privacy.scan_images(privacy.book_images(site), index)
    where = {Path(f.where.split(" embedded")[0]).name for f in findings}
    assert where == {"upper.html", "quoted.html", "wrapped.css", "figure.jfif", "noname", "mirrored.png"}, findings
    assert {f.what.replace(" (mirrored)", "") for f in findings} == {clinical_b["image_id"].iloc[5]}


def test_the_scans_recall_under_each_transformation_is_measured(smoke) -> None:
    _, index, (clinical_a, _), age = smoke
    clinical = [(clinical_a["image_id"].iloc[i], photos(clinical_a, [i])[0]) for i in range(3)]
    table = privacy.recall(index, clinical, photos(age, range(3)), transforms=("as is, 128 px", "flipped", "grey"))
    assert list(table.index) == ["as is, 128 px", "flipped", "grey"]
    assert (table["clinical photos"] == 3).all() and table["recall"].between(0, 1).all()
    assert table.loc["as is, 128 px", "found"] >= 2 and table["flagged"].sum() == 0
    assert "false positives" in privacy.recall_sentence(table)
