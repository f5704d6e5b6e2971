"""Offline checks of the service images' Dockerfile: what can be proved without building them.

One Dockerfile, `system/Dockerfile`, builds every service's image as a stage named after the
service (`docker build --target <service>`), on a shared stage. Each service's image is checked
as Docker builds it: the global `ARG`s, then the chain of stages from the base to the target.

Rules (identifiers in brackets):

- [dockerfile.stage] there is a stage named after the service, and its chain of stages does not
  loop (a stage on a name that is no stage is on an image of that name: [dockerfile.base] judges
  it);
- [dockerfile.from] every base image has a version tag (not `latest`) or a digest; a base named
  by a build argument (`FROM ${BASE_IMAGE}`) is judged by the argument's default, which must exist
  (a plain `docker build` uses it);
- [dockerfile.base] the base is the build argument `BASE_IMAGE` (`ARG BASE_IMAGE=<official>` then
  `FROM ${BASE_IMAGE}`): where the official image cannot be pulled, the harness builds on a base
  of its own by passing `--build-arg BASE_IMAGE=...`, without editing the Dockerfile;
- [dockerfile.user] the last `USER` is a numeric, non-root uid (runAsNonRoot can only verify a
  numeric one);
- [dockerfile.packages] `pip install` installs only pinned (`==`) runtime packages of the services,
  and no OS packages are installed (no compilers, shells or other dev tools);
- [dockerfile.copy] only `system/` is copied (no `COPY . .`, no remote `ADD`), including the
  service's own package and not another service's (but for `ALSO_COPIES`);
- [dockerfile.entrypoint] the exec-form entrypoint runs `python -m medpubsub <service>`;
- [dockerfile.imports] every module the service imports (from its entry point and its own
  package) is in the image: the standard library, the copied `medpubsub` files, or a module of
  an installed package. This is what proves "only what the service runs" is also "everything it
  runs" without a Docker engine.
"""

from __future__ import annotations

import ast
import glob
import json
import re
import shlex
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path

from pytest_medpubsub.k8s.findings import Finding

SERVICES = ("patient", "medicine", "dispatcher")
# The packages of other services an image may copy: the dispatcher reads the order it hands to a
# maker with the maker's own model (medicine/one_order.py), so that the two cannot disagree.
ALSO_COPIES: dict[str, frozenset[str]] = {"dispatcher": frozenset({"medicine"})}
BASE_ARG = "BASE_IMAGE"
PACKAGE = "medpubsub"
SYSTEM_DIR = "system"
# What each allowed distribution puts on the import path (its own modules and its dependencies).
PROVIDES: dict[str, frozenset[str]] = {
    "confluent-kafka": frozenset({"confluent_kafka"}),
    "pydantic": frozenset(
        {"pydantic", "pydantic_core", "annotated_types", "typing_extensions", "typing_inspection"}
    ),
    "pydantic-settings": frozenset({"pydantic_settings", "dotenv"}),
    # The dispatcher's: it creates Jobs through the API and reads their template.
    "kubernetes": frozenset({"kubernetes"}),
    "pyyaml": frozenset({"yaml"}),
}
PIP = re.compile(r"pip[0-9.]*")
VARIABLE = re.compile(r"^\$(?:\{(\w+)\}|(\w+))$")
OS_PACKAGE_MANAGERS = re.compile(r"\b(apt-get|apt|apk|yum|dnf|microdnf)\s+(install|add)\b")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    line: int


DOCKERFILE = f"{SYSTEM_DIR}/Dockerfile"


def dockerfile_path(project_dir: Path) -> Path:
    return project_dir / DOCKERFILE


def image_subject(service: str) -> str:
    """How a finding names one service's image: the build that makes it."""
    return f"{DOCKERFILE} --target {service}"


def parse(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        continued = line.endswith("\\")
        pending.append(line.removesuffix("\\").strip())
        if not continued:
            keyword, _, arguments = " ".join(part for part in pending if part).partition(" ")
            instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
            pending = []
    return instructions


def target_instructions(instructions: list[Instruction], target: str) -> list[Instruction] | None:
    """What builds the image of stage `target`, in order: the global `ARG`s, then every stage
    from the one on the base to `target`. None when there is no such chain."""
    preamble = list(takewhile(lambda instruction: instruction.keyword != "FROM", instructions))
    stages: dict[str, list[Instruction]] = {}
    for number, instruction in enumerate(instructions[len(preamble) :]):
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            named = len(words) >= 3 and words[-2].upper() == "AS"
            current = stages[words[-1].lower() if named else f"#{number}"] = []
        current.append(instruction)
    chain: list[Instruction] = []
    name = target.lower()
    for _ in stages:  # a chain longer than the stages would be a loop
        if name not in stages:
            return None
        chain = stages[name] + chain
        name = _from_image(stages[name][0]).lower()
        if name not in stages:
            return preamble + chain
    return None


def dockerfile_findings(project_dir: Path, service: str) -> list[Finding]:
    """Every broken rule of the service's image (`system/Dockerfile --target <service>`)."""
    path = dockerfile_path(project_dir)
    subject = image_subject(service)
    if not path.exists():
        return [Finding(subject, "dockerfile.missing", f"no {DOCKERFILE}")]
    instructions = target_instructions(parse(path.read_text(encoding="utf-8")), service)
    if instructions is None:
        return [
            Finding(
                subject,
                "dockerfile.stage",
                f"no stage {service!r} built from the base (FROM <base or stage> AS {service})",
            )
        ]
    findings: list[Finding] = []

    def broken(rule: str, message: str) -> None:
        findings.append(Finding(subject, rule, message))

    arguments = build_arguments(instructions)
    stages: set[str] = set()
    for index, instruction in enumerate(_of(instructions, "FROM")):
        image = _from_image(instruction)
        words = instruction.arguments.split()
        if "AS" in (word.upper() for word in words):
            stages.add(words[-1].lower())
        variable = VARIABLE.match(image)
        if index == 0 and (variable is None or BASE_ARG not in variable.groups()):
            broken(
                "dockerfile.base",
                f"line {instruction.line}: the base must be FROM ${{{BASE_ARG}}} (with ARG "
                f"{BASE_ARG}=<official image>), so that another base can be passed at build time",
            )
        if variable is not None:
            name = variable.group(1) or variable.group(2)
            if name not in arguments:
                broken("dockerfile.from", f"line {instruction.line}: no ARG {name} before FROM")
                continue
            if arguments[name] is None:
                broken("dockerfile.from", f"ARG {name} has no default for a plain docker build")
                continue
            image = str(arguments[name])
        if image.lower() in stages:
            continue
        if not _pinned(image):
            broken("dockerfile.from", f"line {instruction.line}: {image!r} needs a version tag")

    users = list(_of(instructions, "USER"))
    user = users[-1].arguments.split(":")[0] if users else ""
    if not user.isdigit() or int(user) == 0:
        broken("dockerfile.user", f"the last USER must be a numeric non-root uid, got {user!r}")

    installed: set[str] = set()
    for instruction in _of(instructions, "RUN"):
        if OS_PACKAGE_MANAGERS.search(instruction.arguments):
            broken("dockerfile.packages", f"line {instruction.line}: installs OS packages")
        for package in _pip_packages(instruction.arguments):
            name, _, version = package.partition("==")
            name = name.lower()
            if name not in PROVIDES:
                broken("dockerfile.packages", f"line {instruction.line}: installs {name!r}")
                continue
            if not version:
                broken("dockerfile.packages", f"line {instruction.line}: {name} is not pinned")
            installed.add(name)

    copied = _copied_files(project_dir, instructions, broken)
    own = f"{SYSTEM_DIR}/{service}/"
    if not any(file.startswith(own) for file in copied):
        broken("dockerfile.copy", f"does not copy the service's package {own}")
    for other in SERVICES:
        if other == service or other in ALSO_COPIES.get(service, frozenset()):
            continue
        if any(file.startswith(f"{SYSTEM_DIR}/{other}/") for file in copied):
            broken("dockerfile.copy", f"copies the other service's package {SYSTEM_DIR}/{other}/")

    entrypoints = list(_of(instructions, "ENTRYPOINT"))
    expected = ["python", "-m", PACKAGE, service]
    if not entrypoints or _exec_form(entrypoints[-1].arguments) != expected:
        broken("dockerfile.entrypoint", f"ENTRYPOINT must be the exec form {json.dumps(expected)}")

    modules = frozenset().union(*(PROVIDES[name] for name in installed))
    for module, importer in _missing_imports(project_dir, service, copied, modules):
        broken("dockerfile.imports", f"{importer} imports {module}, which the image does not have")
    return findings


def build_arguments(instructions: Iterable[Instruction]) -> dict[str, str | None]:
    """The `ARG`s declared before the first `FROM` (those a `FROM` may use), with defaults."""
    arguments: dict[str, str | None] = {}
    for instruction in instructions:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            for word in shlex.split(instruction.arguments):
                name, separator, default = word.partition("=")
                arguments[name] = default if separator else None
    return arguments


def default_base_image(project_dir: Path) -> str | None:
    """The default of the Dockerfile's `ARG BASE_IMAGE`: the official base (None without one)."""
    path = dockerfile_path(project_dir)
    return build_arguments(parse(path.read_text(encoding="utf-8"))).get(BASE_ARG)


def _from_image(instruction: Instruction) -> str:
    return next((word for word in instruction.arguments.split() if not word.startswith("--")), "")


def _of(instructions: Iterable[Instruction], keyword: str) -> Iterator[Instruction]:
    return (instruction for instruction in instructions if instruction.keyword == keyword)


def _pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    _, _, tag = image.rpartition("/")[2].rpartition(":")
    return bool(tag) and tag != "latest" and any(character.isdigit() for character in tag)


def _pip_packages(command: str) -> list[str]:
    """The requirement arguments of every `pip install` in a shell command."""
    packages: list[str] = []
    for part in re.split(r"&&|;|\|\|", command):
        words = shlex.split(part)
        is_pip = any(PIP.fullmatch(word.rsplit("/", 1)[-1]) for word in words)
        if is_pip and "install" in words:
            after = words[words.index("install") + 1 :]
            packages += [word for word in after if not word.startswith("-")]
    return packages


def _exec_form(arguments: str) -> list[str] | None:
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) else None


def _copied_files(
    project_dir: Path, instructions: Iterable[Instruction], broken: Callable[[str, str], None]
) -> set[str]:
    """The repository files the image receives, as paths relative to the build context."""
    copied: set[str] = set()
    for instruction in instructions:
        if instruction.keyword not in ("COPY", "ADD"):
            continue
        words = shlex.split(instruction.arguments)
        if any(word.startswith("--from") for word in words):
            continue  # from another build stage, not from the repository
        words = [word for word in words if not word.startswith("--")]
        for source in words[:-1]:
            if "://" in source:
                broken("dockerfile.copy", f"line {instruction.line}: fetches {source}")
                continue
            if not source.startswith(f"{SYSTEM_DIR}/"):
                broken("dockerfile.copy", f"line {instruction.line}: copies {source!r}")
                continue
            for match in glob.glob(source, root_dir=project_dir):
                path = project_dir / match
                files = path.rglob("*") if path.is_dir() else [path]
                copied |= {
                    file.relative_to(project_dir).as_posix()
                    for file in files
                    if file.is_file() and "__pycache__" not in file.parts
                }
    return copied


def _missing_imports(
    project_dir: Path, service: str, copied: set[str], third_party: frozenset[str]
) -> Iterator[tuple[str, str]]:
    """(module, importer) for each import the image cannot satisfy.

    Followed from `medpubsub.__main__` and every module of the service's package: module-level
    imports everywhere, and also imports inside functions of the service's own modules. Imports
    inside functions of shared modules (the CLI dispatching to either service) and imports
    guarded by `except ImportError` are optional and not followed.
    """
    own = f"{SYSTEM_DIR}/{service}/"
    service_modules = sorted(
        file for file in copied if file.startswith(own) and file.endswith(".py")
    )
    queue = [f"{SYSTEM_DIR}/__main__.py", *service_modules]
    seen: set[str] = set()
    while queue:
        file = queue.pop()
        if file in seen or not (project_dir / file).exists():
            continue
        seen.add(file)
        tree = ast.parse((project_dir / file).read_text(encoding="utf-8"), filename=file)
        for module in _imports(tree, file, deep=file.startswith(own)):
            top = module.split(".")[0]
            if top == PACKAGE:
                target = _module_file(project_dir, module, copied)
                if target is None:
                    yield module, file
                else:
                    queue.append(target)
            elif top not in sys.stdlib_module_names and top not in third_party:
                yield module, file


def _imports(tree: ast.Module, file: str, *, deep: bool) -> Iterator[str]:
    """Absolute names of what `tree` imports; for `from a import b`, both `a` and `a.b` when `a`
    is ours (`b` may be a module or an attribute; `_module_file` tells)."""
    package = ".".join([PACKAGE, *Path(file).parent.parts[1:]])

    def visit(nodes: Iterable[ast.AST]) -> Iterator[str]:
        for node in nodes:
            if isinstance(node, ast.Import):
                yield from (alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.rsplit(".", node.level - 1)[0]
                    base = f"{parent}.{base}" if base else parent
                yield base
                if base.split(".")[0] == PACKAGE:
                    yield from (f"{base}.{alias.name}" for alias in node.names)
            elif not _optional(node, deep=deep):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    yield from visit(getattr(node, field, []))

    return visit(tree.body)


def _optional(node: ast.AST, *, deep: bool) -> bool:
    """Code whose imports the image may lack: guarded by `except ImportError`, for type checkers
    only, or (when not `deep`) inside a function."""
    if isinstance(node, ast.Try):
        return any(
            handler.type is not None and "ImportError" in ast.unparse(handler.type)
            for handler in node.handlers
        )
    if isinstance(node, ast.If):
        return "TYPE_CHECKING" in ast.unparse(node.test)
    return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not deep


def _module_file(project_dir: Path, module: str, copied: set[str]) -> str | None:
    """The copied file that provides `medpubsub.x.y`; None when the image lacks it.

    A name that is neither a module nor a package in the repository is an attribute of its
    parent (`from medpubsub import something`), provided by the parent's file.
    """
    parts = module.split(".")[1:]
    base = "/".join([SYSTEM_DIR, *parts])
    for candidate in (f"{base}.py", f"{base}/__init__.py"):
        if candidate in copied:
            return candidate
    if (project_dir / f"{base}.py").exists() or (project_dir / base).is_dir():
        return None  # a module of the repository that was not copied
    return _module_file(project_dir, ".".join([PACKAGE, *parts[:-1]]), copied) if parts else None
