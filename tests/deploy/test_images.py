"""The images the deployment runs: one multi-stage docker/Dockerfile whose service targets share
pinned, non-root base stages; `make images` builds each target; the chart's image names are the
ones the pipelines and `make images` use. No Docker engine here: the proof reads the files."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
import yaml

from tests.deploy.support import CHART, ROOT

DOCKERFILE = ROOT / "docker" / "Dockerfile"
MAKEFILE = ROOT / "Makefile"
#: Each service target, the base stage it builds on and the module it runs.
SERVICES = {
    "xgboost-scorer": ("platform-base", "inference_services.xgboost_scorer"),
    "feature-transformer": ("platform-base", "inference_services.feature_transformer"),
    "explainer": ("monitoring-base", "inference_services.explainer"),
    "drift-detector": ("monitoring-base", "inference_services.drift_detector"),
}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    found: list[tuple[str, str]] = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


@dataclass
class Stage:
    name: str
    base: str  # an image, or an earlier stage's name
    steps: list[tuple[str, str]] = field(default_factory=list)


def stages(text: str) -> dict[str, Stage]:
    """The Dockerfile's stages by name, in order."""
    found: dict[str, Stage] = {}
    current: Stage | None = None
    for keyword, args in instructions(text):
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", args, flags=re.IGNORECASE)
            assert match, f"every stage is named: FROM {args}"
            current = Stage(match.group(2), match.group(1))
            assert current.name not in found, f"stage {current.name} twice"
            found[current.name] = current
        elif current is not None:
            current.steps.append((keyword, args))
    return found


def lineage(all_stages: dict[str, Stage], name: str) -> list[Stage]:
    """The stage and the stages it builds on, nearest first."""
    chain = [all_stages[name]]
    while chain[-1].base in all_stages:
        chain.append(all_stages[chain[-1].base])
    return chain


def effective(all_stages: dict[str, Stage], name: str, keyword: str) -> str | None:
    """The last ``keyword`` instruction in force in a stage (inherited from its bases)."""
    for stage in lineage(all_stages, name):
        values = [args for k, args in stage.steps if k == keyword]
        if values:
            return values[-1]
    return None


def make_images() -> list[str]:
    """The Makefile's IMAGES (each a target of docker/Dockerfile)."""
    text = re.sub(r"\\\n", " ", MAKEFILE.read_text(encoding="utf-8"))
    match = re.search(r"^IMAGES\s*:=\s*(.+)$", text, flags=re.MULTILINE)
    assert match, "no IMAGES in the Makefile"
    return match.group(1).split()


@pytest.fixture(scope="module")
def dockerfile() -> dict[str, Stage]:
    return stages(DOCKERFILE.read_text(encoding="utf-8"))


def test_one_dockerfile_builds_every_image() -> None:
    assert sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("**/Dockerfile")
                  if not any(part.startswith(".") for part in p.relative_to(ROOT).parts)) == [
        "docker/Dockerfile"
    ]  # fmt: skip


def test_bases_are_pinned_images_or_earlier_stages(dockerfile: dict[str, Stage]) -> None:
    seen: set[str] = set()
    for stage in dockerfile.values():
        if stage.base not in seen:
            image = stage.base
            assert re.search(r":[A-Za-z0-9_][A-Za-z0-9_.-]*$|@sha256:[a-f0-9]{64}$", image), image
            assert not image.endswith(":latest"), image
            assert re.search(r":\d+\.\d+\.\d+", image), f"a patch-level tag: {image}"
        seen.add(stage.name)
    steps = [s for stage in dockerfile.values() for s in stage.steps]
    assert not any(k == "ADD" for k, _ in steps), "COPY only: no remote or archive ADD"


def test_every_image_of_make_is_a_target(dockerfile: dict[str, Stage]) -> None:
    images = make_images()
    assert set(SERVICES) | {"components"} == set(images)
    assert set(images) <= set(dockerfile)
    recipe = MAKEFILE.read_text(encoding="utf-8")
    assert "--target $$name" in recipe
    assert "-f $(DOCKERFILE)" in recipe
    assert re.search(r"^DOCKERFILE\s*:=\s*docker/Dockerfile$", recipe, flags=re.MULTILINE)


@pytest.mark.parametrize("target", [*SERVICES, "components"])
def test_each_target_runs_as_a_numeric_non_root_user(
    dockerfile: dict[str, Stage], target: str
) -> None:
    own = [args for keyword, args in dockerfile[target].steps if keyword == "USER"]
    assert own, f"{target} sets its USER itself (the base stages install as root)"
    assert re.fullmatch(r"[1-9][0-9]*", own[-1]), f"a numeric uid: {own[-1]}"
    assert int(own[-1]) == 1000
    # Nothing runs as root after the switch.
    steps = dockerfile[target].steps
    after = steps[[k for k, _ in steps].index("USER") :]
    assert not any(k == "RUN" for k, _ in after)


def test_base_stages_never_switch_user(dockerfile: dict[str, Stage]) -> None:
    for name in ("python-base", "platform-base", "monitoring-base"):
        assert not any(k == "USER" for k, _ in dockerfile[name].steps), name
    assert any(k == "RUN" and "useradd --uid 1000" in a for k, a in dockerfile["python-base"].steps)


@pytest.mark.parametrize(("target", "expected"), sorted(SERVICES.items()))
def test_service_targets_share_their_base_and_start_their_server(
    dockerfile: dict[str, Stage], target: str, expected: tuple[str, str]
) -> None:
    base, module = expected
    assert dockerfile[target].base == base
    assert lineage(dockerfile, target)[-1].name == "python-base"
    assert effective(dockerfile, target, "ENTRYPOINT") == f'["python", "-m", "{module}"]'
    assert effective(dockerfile, target, "STOPSIGNAL") == "SIGTERM"
    exposed = (effective(dockerfile, target, "EXPOSE") or "").split()
    assert "8080" in exposed
    copied = {a.split()[0] for k, a in dockerfile[target].steps if k == "COPY"}
    assert copied == {"inference_services/"}, "a service target adds only the adapters"
    package = ROOT / module.replace(".", "/")
    assert (package / "__main__.py").is_file()


def test_platform_base_installs_the_server_subset_and_the_feature_repo(
    dockerfile: dict[str, Stage],
) -> None:
    steps = dockerfile["platform-base"].steps
    copied = {a.split()[0] for k, a in steps if k == "COPY"}
    assert {"requirements/platform.lock", "src/", "feature_repo/"} <= copied
    install = next(a for k, a in steps if k == "RUN" and "-r /tmp/serving.lock" in a)
    assert "--no-deps" in install
    assert "${NOT_SERVED}" in install


def test_monitoring_base_is_licence_guarded(dockerfile: dict[str, Stage]) -> None:
    runs = " ".join(a for k, a in dockerfile["monitoring-base"].steps if k == "RUN")
    assert "-r requirements/monitoring.lock" in runs
    assert "getit_ml.licensing --installed --require --lock requirements/monitoring.lock" in runs


def test_components_image_carries_what_the_pipelines_and_servers_run(
    dockerfile: dict[str, Stage],
) -> None:
    chain = lineage(dockerfile, "components")
    copied = {a.split()[0] for s in chain for k, a in s.steps if k == "COPY"}
    assert {"components/", "feature_repo/", "src/", "requirements/platform.lock"} <= copied
    runs = " ".join(a for k, a in dockerfile["components"].steps if k == "RUN")
    assert "download.pytorch.org/whl/cpu" in runs
    assert effective(dockerfile, "components", "ENTRYPOINT") is None


def test_the_build_context_keeps_what_the_stages_copy() -> None:
    ignore = (ROOT / "docker" / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    patterns = [line.strip() for line in ignore.splitlines() if line.strip()[:1] not in ("", "#")]
    assert patterns[0] == "*", "an allow list: nothing reaches the builder unless named"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    sources = {
        source.rstrip("/")
        for keyword, args in instructions(DOCKERFILE.read_text(encoding="utf-8"))
        if keyword == "COPY"
        for source in args.split()[:-1]
    }
    assert sources == allowed
    for source in sources:
        assert (ROOT / source).exists(), source


def _chart_images() -> set[str]:
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    images = values["images"]
    platform = {
        images[k] for k in ("featureTransformer", "explainer", "driftDetector", "components")
    }
    return platform | {runtime["image"] for runtime in values["runtimes"].values()}


def test_chart_image_names_are_the_images_make_builds() -> None:
    assert _chart_images() == {f"getit-ml/{name}" for name in make_images()}


def test_chart_uses_the_component_image_of_the_pipelines() -> None:
    from components import BASE_IMAGE

    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    images = values["images"]
    assert f"{images['components']}:{images['tag']}" == BASE_IMAGE
    compiled = sorted((ROOT / "pipelines" / "compiled").glob("*.yaml"))
    assert compiled
    for path in compiled:
        assert set(re.findall(r"image: (\S+)", path.read_text(encoding="utf-8"))) == {BASE_IMAGE}
    assert values["appUid"] == 1000


def test_kind_loads_every_image_make_builds() -> None:
    recipe = MAKEFILE.read_text(encoding="utf-8")
    deploy = recipe[recipe.index("kind-deploy:") :]
    assert re.search(r"for name in \$\(IMAGES\); do", deploy)
    assert "getit-ml/$$name:$(IMAGE_TAG)" in deploy


def test_the_readmes_name_no_per_service_dockerfile() -> None:
    for readme in [ROOT / "inference_services" / "README.md",
                   *ROOT.glob("inference_services/*/README.md")]:  # fmt: skip
        text = readme.read_text(encoding="utf-8")
        assert not re.search(r"inference_services/\w+/Dockerfile", text), readme
        assert "fraud_scorer" not in text, readme
