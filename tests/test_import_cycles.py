"""No import cycles in the fastrnn package.

The rule this test enforces:

- Nodes: every module of the package, as `pkgutil.walk_packages` finds them (packages, plain
  modules and the compiled extension), and each of them imports (but `__main__`, which runs).
- Edges: EVERY `import` / `from ... import` statement of a module whose target is a fastrnn
  module, wherever it stands: at module level AND inside functions and methods (a function-level
  import is a dependency all the same, only a later one; counting it is what catches
  `cli.py` <-> `cli_tasks.py` or `train/trainer.py` <-> `train/distributed.py`). Statements under
  `if TYPE_CHECKING:` never run and do not count. `from pkg import name` is an edge to the
  module `pkg.name` when there is one, else to `pkg` itself (its `__init__`). The implicit import
  of a module's parent packages is not an edge: no statement chose it.
- A cycle is any strongly connected set of two or more modules; the test names each one as a
  path `a -> b -> ... -> a` with the file and line of every import on it.
- The graph of module-level imports (what runs when a module is imported: statements outside
  any function) has no cycle at all. The graph of every import has none either, except through
  the few function-level edges in `DELIBERATE` that point up a layer on purpose, each with its
  reason; the test fails when one of them is no longer in the code or no longer closes a cycle,
  so the list can only shrink.
"""
import ast
import importlib
import pkgutil

import pytest

import fastrnn

DELIBERATE = {
    ("fastrnn.io", "fastrnn.checkpoint_meta"):
        "fastrnn.load checks a checkpoint's metadata with the checks of every area that writes it "
        "(training state: train/checkpoint_checks.py, which reads the Trainer's signature; task "
        "state: tasks/validate.py); those areas save and load through io",
    ("fastrnn.nn.layer_operands", "fastrnn.quant"):
        "a quantized recurrent layer's packed operands are its int8 weights, which fastrnn.quant "
        "(built on nn: quantize(model) walks the model's blocks) makes and owns",
    ("fastrnn.nn.linear", "fastrnn.quant"):
        "a quantized Linear head's inference product is fastrnn.quant's int8 matrix; as above",
}


def _modules():
    """{module name: source path or None (the extension)} of the whole package."""
    found = {"fastrnn": fastrnn.__file__}
    for info in pkgutil.walk_packages(fastrnn.__path__, "fastrnn."):
        spec = importlib.util.find_spec(info.name)
        origin = spec.origin if spec is not None else None
        found[info.name] = origin if origin and origin.endswith(".py") else None
    return found


def _type_checking_lines(tree):
    """Line numbers of the statements under `if TYPE_CHECKING:` (they never run)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                for sub in ast.walk(child):
                    if hasattr(sub, "lineno"):
                        lines.add(sub.lineno)
    return lines


def _targets(name, is_package, node, modules):
    """The fastrnn modules one import statement of module `name` depends on."""
    if isinstance(node, ast.Import):
        wanted = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = (name if is_package else name.rpartition(".")[0]).split(".")
            parts = parts[:len(parts) - node.level + 1]
            base = ".".join(parts + ([node.module] if node.module else []))
        wanted = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                  for alias in node.names]
    out = set()
    for target in wanted:
        while target and target not in modules:       # `import a.b.c` names a.b.c's module
            target = target.rpartition(".")[0]
        if target and target != name:
            out.add(target)
    return out


def _module_level(tree):
    """The import statements that run when the module is imported (none inside a function)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        todo.extend(ast.iter_child_nodes(node))


def _graph(module_level=False):
    """{module: {imported module: line}} over the package (see the module docstring); only the
    imports that run at import time when `module_level`."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        graph[name] = {}
        if path is None:
            continue
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        skip = _type_checking_lines(tree)
        is_package = path.endswith("__init__.py")
        for node in _module_level(tree) if module_level else ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and node.lineno not in skip:
                for target in _targets(name, is_package, node, modules):
                    graph[name].setdefault(target, node.lineno)
    return graph, modules


def _cycles(graph):
    """The strongly connected sets of two or more modules (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, edges = work[-1]
            for w in edges:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(graph[w])))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.add(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(component)
    return found


def _path(graph, component):
    """One cycle through `component`: [a, b, ..., a] (breadth-first from its first module)."""
    start = min(component)
    parents, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w == start:
                path = [v]
                while parents[path[-1]] is not None:
                    path.append(parents[path[-1]])
                return [start] + path[::-1][1:] + [start] if len(path) > 1 else [start, v, start]
            if w in component and w not in parents:
                parents[w] = v
                queue.append(w)
    return sorted(component)


def _describe(graph, modules, cycle):
    steps = []
    for a, b in zip(cycle, cycle[1:]):
        where = (modules[a] or a).split("src/")[-1]
        steps.append(f"{a} -> {b}  ({where}:{graph[a][b]})")
    return "\n    ".join(steps)


def _without(graph, edges):
    return {a: {b: line for b, line in targets.items() if (a, b) not in edges}
            for a, targets in graph.items()}


def test_every_module_imports():
    for name in _modules():
        if name.endswith(".__main__"):      # `python -m fastrnn` itself: importing it runs the CLI
            continue
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:      # an optional extra that is not installed here
            if (e.name or "").split(".")[0] == "fastrnn":
                raise


def test_no_import_cycles_among_module_level_imports():
    graph, modules = _graph(module_level=True)
    cycles = [_path(graph, c) for c in _cycles(graph)]
    message = "\n".join(f"import cycle:\n    {_describe(graph, modules, c)}" for c in cycles)
    assert not cycles, message


def test_no_import_cycles_counting_function_level_imports():
    graph, modules = _graph()
    cycles = [_path(graph, c) for c in _cycles(_without(graph, DELIBERATE))]
    message = "\n".join(f"import cycle:\n    {_describe(graph, modules, c)}" for c in cycles)
    assert not cycles, message


@pytest.mark.parametrize("edge", sorted(DELIBERATE))
def test_each_deliberate_edge_is_still_there_and_still_needed(edge):
    graph, _ = _graph()
    a, b = edge
    assert b in graph.get(a, {}), f"{a} no longer imports {b}: remove it from DELIBERATE"
    assert _cycles(_without(graph, set(DELIBERATE) - {edge})), (
        f"{a} -> {b} no longer closes a cycle: remove it from DELIBERATE")


def test_the_checker_finds_a_cycle_and_names_it():
    graph = {"a": {"b": 3}, "b": {"c": 7}, "c": {"a": 1}, "d": {"a": 2}}
    (component,) = _cycles(graph)
    assert component == {"a", "b", "c"}
    assert _path(graph, component) == ["a", "b", "c", "a"]
    assert _describe(graph, {"a": None, "b": None, "c": None}, ["a", "b", "c", "a"]).startswith("a -> b  (a:3)")
