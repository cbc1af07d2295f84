"""The images the deployment runs: each Dockerfile builds a non-root image from a pinned base, and
the chart's image names are the ones the pipelines and `make images` use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import CHART, ROOT

DOCKERFILES = [
    *sorted(ROOT.glob("inference_services/*/Dockerfile")),
    ROOT / "docker" / "components" / "Dockerfile",
]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    found: list[tuple[str, str]] = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_image_is_non_root_and_pinned(dockerfile: Path) -> None:
    steps = instructions(dockerfile)
    bases = [args for keyword, args in steps if keyword == "FROM"]
    assert bases
    for base in bases:
        image = base.split()[0]
        assert ":" in image
        assert not image.endswith(":latest")
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users, "no USER: the image would run as root"
    assert re.fullmatch(r"[1-9][0-9]*", users[-1]), f"last USER must be a numeric uid: {users[-1]}"
    assert not any(k == "ADD" and "://" in a for k, a in steps), "no remote ADD"


def test_components_image_carries_what_the_pipelines_and_servers_run() -> None:
    steps = instructions(ROOT / "docker" / "components" / "Dockerfile")
    copied = {args.split()[0] for keyword, args in steps if keyword == "COPY"}
    assert {"components/", "feature_repo/", "src/", "requirements/platform.lock"} <= copied
    assert int(next(a for k, a in reversed(steps) if k == "USER")) == 1000


def test_chart_uses_the_component_image_of_the_pipelines() -> None:
    from components import BASE_IMAGE

    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    images = values["images"]
    assert f"{images['components']}:{images['tag']}" == BASE_IMAGE
    compiled = (ROOT / "pipelines" / "compiled" / "fraud_training.yaml").read_text(encoding="utf-8")
    assert set(re.findall(r"image: (\S+)", compiled)) == {BASE_IMAGE}
    assert values["appUid"] == 1000
