"""Docs that run: every public name has a purpose line, Args and an example that executes.

The convention (Keras's docstring style, see ARCHITECTURE.md):

* every module of the package lists its public names in `__all__`;
* each public class or function has a docstring whose first line is one
  purpose sentence, an `Args:` section when it takes arguments, and an
  `Example:` section with a fenced python block that runs on its own (its own
  imports, small data it makes itself, a few seconds at most);
* exceptions and constants need only the purpose line.

The examples run here in a temporary working directory, each in a fresh
namespace, so they stay true as the code changes.
"""

import importlib
import inspect
import pkgutil
import re

import pytest

import keras_autolr

FENCE = re.compile(r"```python\n(.*?)```", re.S)


def _modules():
    names = ["keras_autolr"]
    for info in pkgutil.walk_packages(keras_autolr.__path__, "keras_autolr."):
        leaf = info.name.rsplit(".", 1)[-1]
        if leaf.startswith("_"):
            continue
        names.append(info.name)
    return sorted(names)


def _import(name):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:  # an optional extra (keras_tuner, optuna, ray) is missing
        pytest.skip(f"{name}: {e}")


def _public(module):
    out = []
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            continue
        # Re-exports are checked where they are defined.
        if getattr(obj, "__module__", module.__name__) != module.__name__:
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            out.append((name, obj))
    return out


def _takes_arguments(obj):
    target = obj.__init__ if inspect.isclass(obj) else obj
    if inspect.isclass(obj) and target is object.__init__:
        return False
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return False
    params = [p for p in params if p.name not in ("self", "cls")
              and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    return bool(params)


MODULES = _modules()


@pytest.mark.parametrize("module_name", MODULES)
def test_module_lists_public_names(module_name):
    module = _import(module_name)
    assert module.__doc__ and module.__doc__.strip(), f"{module_name} has no module docstring"
    assert hasattr(module, "__all__"), f"{module_name} has no __all__"
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ lists {name!r}, which it does not define"


def _documented():
    items = []
    for module_name in MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        items.extend((module_name, name, obj) for name, obj in _public(module))
    return items


DOCUMENTED = _documented()


@pytest.mark.parametrize("module_name,name,obj", DOCUMENTED,
                         ids=[f"{m}.{n}" for m, n, _ in DOCUMENTED])
def test_public_name_is_documented(module_name, name, obj):
    doc = inspect.getdoc(obj) or ""
    own = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
    assert own and doc.strip(), f"{module_name}.{name} has no docstring of its own"
    assert doc.splitlines()[0].strip(), f"{module_name}.{name}: the first line must be a purpose sentence"
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return
    if _takes_arguments(obj):
        assert "Args:" in doc, f"{module_name}.{name} takes arguments but its docstring has no Args: section"
    assert FENCE.search(doc), f"{module_name}.{name} has no ```python example"


def _examples():
    seen, items = set(), []
    for module_name in MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        sources = [(module_name, module.__doc__ or "")]
        sources += [(f"{module_name}.{n}", inspect.getdoc(o) or "") for n, o in _public(module)]
        for where, doc in sources:
            for i, block in enumerate(FENCE.findall(doc)):
                key = (where, i)
                if key not in seen:
                    seen.add(key)
                    items.append((f"{where}[{i}]", block))
    return items


EXAMPLES = _examples()


@pytest.mark.slow
@pytest.mark.parametrize("where,code", EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_docstring_example_runs(where, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"<example {where}>", "exec"), {"__name__": "__example__"})
