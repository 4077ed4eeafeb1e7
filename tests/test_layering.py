"""The code's layers (README, "Where the code lives"): a module imports only from its own
layer or the ones below it, never upwards, so each layer can be read, tested and replaced
without the ones above. Read from the source, imports inside functions and TYPE_CHECKING
blocks included."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. A module belongs to the first (longest) prefix that names it.
LAYERS: list[tuple[str, ...]] = [
    ("agent.config", "agent.errors", "agent.domain", "agent.capabilities", "agent.tracing"),
    ("kb", "ingest"),
    ("agent.store",),
    ("tools",),
    ("agent.models",),
    ("agent.engine",),
    ("agent.adapters",),
    ("agent.features", "agent.observability"),
    ("agent.runtime",),
    ("agent.api", "agent.cli", "agent.email"),
]


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > best[0]
            ):
                best = (len(prefix), rank)
    return None if best is None else best[1]


def imports(path: Path, module: str) -> set[str]:
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def upward_imports() -> list[str]:
    wrong = []
    for top in ("agent", "tools", "kb", "ingest"):
        for path in sorted((ROOT / top).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            module = module.removesuffix(".__init__")
            own = layer_of(module)
            if own is None:
                continue
            for name in sorted(imports(path, module)):
                other = layer_of(name)
                if other is not None and other > own:
                    wrong.append(f"{module} (layer {own}) imports {name} (layer {other})")
    return wrong


def test_no_module_imports_a_layer_above_it() -> None:
    assert upward_imports() == []


def test_the_engine_imports_nothing_of_the_store() -> None:
    for path in (ROOT / "agent" / "engine").rglob("*.py"):
        assert not any(
            name.startswith(("agent.store", "agent.adapters"))
            for name in imports(path, "agent.engine." + path.stem)
        ), path


def test_the_rule_sees_an_upward_import(tmp_path: Path) -> None:
    """The check itself: a store module that reached up into the engine would be caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from agent.engine.port import NewMessage\n")
    found = {n for n in imports(bad, "agent.store.bad") if layer_of(n) == 5}
    assert found and layer_of("agent.store.bad") == 2
