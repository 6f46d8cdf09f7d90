"""Hydra's and OmegaConf's errors about the command line (an unknown option, key or syntax) as one line."""

from __future__ import annotations

from transfersep.run.errors import one_line


def is_config_error(e: BaseException) -> bool:
    """Hydra's and OmegaConf's errors about the command line (unknown option, key or syntax)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return isinstance(e, (HydraException, OmegaConfBaseException))


def config_error_line(e: BaseException) -> str:
    """Hydra's several-line message as one line: the option lists joined, the search path dropped.
    An error of the tool's own raised inside a resolver (a malformed ``sweeps/grid.yaml`` behind
    ``${grid_sweep:...}``) is shown as itself, without Hydra's wrapping."""
    inner: BaseException | None = e
    seen: set[int] = set()
    while inner is not None and id(inner) not in seen:
        if isinstance(inner, ValueError) and type(inner).__module__.startswith("transfersep."):
            return one_line(inner)
        if str(e).startswith("Could not override") and (line := unknown_key_line(inner)):
            return line
        seen.add(id(inner))
        inner = inner.__cause__ or inner.__context__
    if line := respelled_line(str(e)):
        return line
    parts: list[str] = []
    listing = False  # after "...:" Hydra lists options one per indented line
    for raw in str(e).splitlines():
        line = raw.strip()
        if line.startswith("Config search path"):
            break
        if not line or line.startswith(("provider=", "object_type=")):
            continue
        if listing and raw.startswith(("\t", " ")):
            parts[-1] += (" " if parts[-1].endswith(":") else ", ") + line
            continue
        listing = line.endswith(":")
        parts.append(line.rstrip("."))
    return "; ".join(parts) or type(e).__name__


def respelled_line(message: str) -> str | None:
    """``pretrain=slakh_mixit: write pretrain=slakh objective=mixit`` for Hydra's missing option of a
    former corpus name that held an objective (``model.objectives.respelling``), else None."""
    import re

    from transfersep.model.objectives import respelling

    found = re.search(r"Could not find 'pretrain/(\w+)'", message)
    instead = respelling(found.group(1)) if found else None
    if instead is None:
        return None
    return f"pretrain={found.group(1)}: the objective is its own key; write {instead}"


def unknown_key_line(e: BaseException) -> str | None:
    """``no key budget.finetun; did you mean budget.finetune`` for OmegaConf's error about a key the
    config lacks (None for any other error). Hydra's own advice, ``+budget.finetun=100``, is left
    out: a mistyped key is far likelier than a wish to add one, and adding it would train with
    the intended key at its default, silently."""
    import difflib

    full, key, parent = (getattr(e, a, None) for a in ("full_key", "key", "parent_node"))
    if not full or key is None or parent is None or not hasattr(parent, "keys"):
        return None
    keys = [str(k) for k in parent.keys()]
    prefix = str(full)[: -len(str(key))]  # "budget." of "budget.finetun"; "" at the top level
    close = difflib.get_close_matches(str(key), keys, n=1, cutoff=0.6)
    if close:
        return f"no key {full}; did you mean {prefix}{close[0]}"
    where = f"under {prefix.rstrip('.')}" if prefix else "at the top level"
    return f"no key {full}; the keys {where} are {', '.join(keys)}"
