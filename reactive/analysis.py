"""Static analysis of one cell: which symbol paths it defines and reads.

The graph can only re-run the right cells if it knows, before running
anything, what each cell reads from and writes to the shared namespace.  We
get that from the AST after turning IPython syntax into Python.  Where the
AST cannot tell (``exec``, ``globals()``, ``%run``) we say so in
``conservative`` instead of guessing: a missed dependency shows stale output,
an extra one only costs a re-run.  For the same reason a name bound on only
some paths (``if c: x = 1``) still counts as read from upstream afterwards.
"""

from __future__ import annotations

import ast
import builtins
import re
import string
import textwrap
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .paths import Attr, Item, Step, SymbolPath

__all__ = [
    "MUTATING_METHODS",
    "CellAnalysis",
    "SyntaxProblem",
    "Transform",
    "analyze",
    "ipython_to_python",
]


@dataclass(frozen=True, slots=True)
class SyntaxProblem:
    """Why a cell could not be parsed, in words a user can act on."""

    message: str
    lineno: int | None = None
    offset: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.lineno})" if self.lineno else ""
        return f"SyntaxError{where}: {self.message}"


@dataclass(frozen=True)
class CellAnalysis:
    """What a cell does to the global namespace, as far as the AST can tell.

    ``refs`` are the paths the cell reads *from outside* (a name the cell
    binds before reading is not a ref).  ``defs`` are the paths it writes,
    including receivers of mutating calls and ``del`` targets.  ``functions``
    maps each function or class the cell defines to the global paths its body
    reads, so a caller of ``f()`` can be made to depend on them.  ``calls``
    are the global names the cell calls (``f`` in ``f(x)``) that it has not
    bound itself: calling (or passing on) its own functions already folds
    their reads into ``refs`` and, for calls, their writes into ``defs``.
    ``function_writes`` maps a function to the globals its body writes; they
    happen when it is called, not when the cell runs.  ``receivers`` are the
    objects the cell writes *into* (``d`` for ``d["a"] = 1``): they must
    exist, but are kept out of ``refs`` so the graph binds them only to the
    writer that created the object (a writer of that path or a prefix), not
    to every cell that wrote a sibling key.
    ``conservative`` is a reason string when the cell does something the
    analysis cannot follow (``exec``, ``globals()[...] = ``, star import);
    the graph then treats the cell as reading and writing everything.
    ``error`` is set (and everything else empty) when the cell does not parse.
    """

    defs: frozenset[SymbolPath] = frozenset()
    refs: frozenset[SymbolPath] = frozenset()
    functions: dict[str, frozenset[SymbolPath]] = field(default_factory=dict)
    calls: frozenset[str] = frozenset()
    conservative: str | None = None
    error: SyntaxProblem | None = None
    function_writes: dict[str, frozenset[SymbolPath]] = field(default_factory=dict)
    receivers: frozenset[SymbolPath] = frozenset()

    @property
    def def_names(self) -> frozenset[str]:
        return frozenset(p.root for p in self.defs)

    @property
    def ref_names(self) -> frozenset[str]:
        return frozenset(p.root for p in self.refs)


Transform = Callable[[str], str]

#: Methods that change their receiver in place: ``x.m(...)`` writes (and reads)
#: ``x``.  Except for ``_RETURNING``, they count only as a statement of their own,
#: because ``y = np.append(a, v)`` is a pure function while ``lst.append(v)`` on
#: its own line only makes sense as a mutation.
MUTATING_METHODS = frozenset({
    "append", "extend", "insert", "remove", "pop", "clear", "sort", "reverse", "update",
    "setdefault", "popitem", "add", "discard", "difference_update", "intersection_update",
    "symmetric_difference_update", "appendleft", "extendleft", "popleft", "rotate", "fill",
    "resize", "__setitem__", "__delitem__",
})  # fmt: skip
_RETURNING = frozenset({"pop", "popitem", "setdefault", "popleft"})
# Conventional module names: ``os.remove(p)`` must not look like a write of ``os``.
_MODULE_ROOTS = frozenset({"os", "sys", "np", "numpy", "pd", "pandas", "math", "shutil"})
# Builtins plus what IPython adds to them: reading these never depends on a cell.
_NOT_REFS = frozenset(dir(builtins)) | {"get_ipython", "display", "__IPYTHON__"}
# ``get_ipython()`` members that read or write the user namespace behind our back.
_NAMESPACE_ATTRS = frozenset({
    "user_ns", "user_global_ns", "push", "ex", "ev", "run_cell", "run_cell_async", "run_code",
    "del_var", "reset", "drop_by_id", "safe_execfile", "safe_run_module",
})  # fmt: skip
# Magics that change the namespace in ways the AST cannot see.
_OPAQUE_MAGICS = frozenset({
    "run", "load", "loadpy", "reset", "reset_selective", "autoreload", "aimport", "pylab",
    "rerun", "recall", "macro", "edit", "ed", "paste", "cpaste",
})  # fmt: skip
# Magics whose argument runs as Python in the user namespace -> their valued options.
_CODE_MAGICS = {"time": (), "capture": (), "memoize": (), "prun": ("-D", "-l", "-s", "-T"),
                "debug": ("-b", "--breakpoint")}  # fmt: skip
_SCRIPT_MAGICS = frozenset({
    "bash", "sh", "script", "perl", "ruby", "python", "python2", "python3", "pypy",
})  # fmt: skip
_TEXT_MAGICS = _SCRIPT_MAGICS | {
    "html", "HTML", "javascript", "js", "latex", "markdown", "svg", "writefile", "file", "sx",
    "system",
}  # fmt: skip
# Line magics IPython does not ``$var``-expand (they take code or object names).
_NO_EXPAND = frozenset({"time", "timeit", "prun", "debug", "pinfo", "pinfo2", "psearch"})

# ------------------------------------------------------- IPython syntax -> Python
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_HELP_END = re.compile(r"(%{0,2}(?!\d)[\w*]+(\.(?!\d)[\w*]+|\[-?[0-9]+\])*)(\?\??)$")


def _help_call(target: str, esc: str) -> str:
    if not target:
        return "get_ipython().show_usage()"
    method = "pinfo2" if esc == "??" else "psearch" if "*" in target else "pinfo"
    return f"get_ipython().run_line_magic({method!r}, {target!r})"


def _escaped(body: str) -> str | None:
    """The Python IPython runs for one logical line, or None if it is Python."""
    if body.endswith("?") and "#" not in body and body[:1] != "?":  # ``obj?`` wins over escapes
        m = _HELP_END.search(body)
        return _help_call(m.group(1), m.group(3)) if m else None
    if body[:2] == "!!":
        return f"get_ipython().getoutput({body[2:]!r})"
    if body[:2] == "??" or body[:1] == "?":
        esc = body[:2] if body[:2] == "??" else "?"
        return _help_call(body[len(esc) :].strip(), esc)
    first, (name, _, args) = body[:1], body[1:].partition(" ")
    if first == "!":
        return f"get_ipython().system({body[1:]!r})"
    if first == "%":
        return f"get_ipython().run_line_magic({name!r}, {args!r})"
    if first == ",":
        return '{}("{}")'.format(name, '", "'.join(args.split()))
    if first == ";":
        return f'{name}("{args}")'
    if first == "/":
        return f"{name}({', '.join(args.split())})"
    cut = _assignment_end(body) or len(body)
    rhs = body[cut:].lstrip()
    lhs = body[: len(body) - len(rhs)]
    if rhs[:1] == "%" and rhs[1:2].isidentifier():
        name, _, args = rhs[1:].partition(" ")
        return f"{lhs}get_ipython().run_line_magic({name!r}, {args!r})"
    if rhs[:1] == "!" and rhs[1:2] != "=":
        return f"{lhs}get_ipython().getoutput({rhs[1:]!r})"
    return None


def _assignment_end(line: str) -> int | None:
    """Index just after the first top-level plain ``=`` (not ``==``, ``+=``...)."""
    depth, quote, i = 0, "", 0
    while i < len(line):
        c = line[i]
        if quote:
            quote = "" if c == quote else quote
            i += 2 if c == "\\" else 1
            continue
        if c == "#":
            return None
        if c in "\"'":
            quote = c
        depth += (c in "([{") - (c in ")]}" and depth > 0)
        if c == "=" and line[i + 1 : i + 2] == "=":
            i += 1  # ``==``
        elif c == "=" and not depth and (i == 0 or line[i - 1] not in "=!<>+-*/%&|^@:~"):
            return i + 1
        i += 1
    return None


class _LineScanner:
    """Knows whether the next physical line starts a statement, so that only
    those are checked for escapes (``%`` in ``(a\\n% b)`` is an operator)."""

    def __init__(self) -> None:
        self.depth, self.quote, self.continued = 0, "", False

    @property
    def at_statement(self) -> bool:
        return not (self.depth or self.quote or self.continued)

    def feed(self, line: str) -> None:
        i, comment = 0, False
        while i < len(line):
            c = line[i]
            if self.quote:
                if c == "\\" or line.startswith(self.quote, i):
                    i += 2 if c == "\\" else len(self.quote)
                    self.quote = self.quote if c == "\\" else ""
                    continue
            elif c == "#":
                comment = True
                break
            elif c in "\"'":
                self.quote = line[i : i + 3] if line[i : i + 3] in ('"""', "'''") else c
                i += len(self.quote)
                continue
            else:
                self.depth = max(0, self.depth + (c in "([{") - (c in ")]}"))
            i += 1
        self.continued = not comment and not self.quote and line.rstrip("\r\n").endswith("\\")
        if len(self.quote) == 1 and not self.continued:
            self.quote = ""  # an unterminated short string ends with its line


def ipython_to_python(source: str) -> str:
    """Rewrite ``%magic``, ``%%cell_magic``, ``!cmd``, ``x = !cmd``, ``obj?``
    into the ``get_ipython()...`` calls IPython would run.

    The core may not import IPython, yet must read magics the same way
    whether or not a kernel supplies ``shell.transform_cell``.
    """
    # Only what Python calls a line break: ``str.splitlines`` would also split
    # inside a string at ``\x0c`` or ``\u2028``.
    lines = _LINE.findall(source if source.endswith("\n") else source + "\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    lines = _LINE.findall(textwrap.dedent("".join(lines)))
    if lines and lines[0].startswith("%%") and not re.match(r"%%\w+\?", lines[0]):
        name, _, first = lines[0][2:].rstrip().partition(" ")
        return f"get_ipython().run_cell_magic({name!r}, {first!r}, {''.join(lines[1:])!r})\n"
    out: list[str] = []
    scanner, i = _LineScanner(), 0
    while i < len(lines):
        if scanner.at_statement and lines[i].strip():
            end = i  # IPython joins backslash-continued escapes into one line
            while lines[end].rstrip("\r\n").endswith("\\") and end + 1 < len(lines):
                end += 1
            logical = " ".join([p.rstrip()[:-1] for p in lines[i:end]] + [lines[end].rstrip()])
            body = logical.lstrip()
            new = _escaped(body)
            if new is not None:
                out.append(logical[: len(logical) - len(body)] + new + "\n")
                i = end + 1
                continue
        scanner.feed(lines[i])
        out.append(lines[i])
        i += 1
    return "".join(out)


def _parse(code: str) -> ast.Module:
    """Parse as the kernel will; its warnings (``invalid escape sequence``) are
    the kernel's to show when the cell runs, and must not turn into errors here."""
    flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile(code, "<cell>", "exec", flags=flags, dont_inherit=True)  # type: ignore[no-any-return]


def _options(line: str, valued: Iterable[str]) -> tuple[dict[str, str], str]:
    """Split leading ``-x val`` / ``--long=val`` options off a magic's line, as
    IPython's option parsers do, so that the rest can be read as code."""
    opts: dict[str, str] = {}
    rest = line.strip()
    while rest.startswith("-"):
        tok, _, rest = rest.partition(" ")
        if tok == "--":
            break
        key, eq, val = tok.partition("=") if tok[:2] == "--" else (tok[:2], "", tok[2:])
        if key in valued and not (eq or val):
            val, _, rest = rest.lstrip().partition(" ")
        opts[key], rest = val, rest.lstrip()
    return opts, rest.strip()


_DOLLAR = re.compile(r"(.*?)\$(\$?[\w\.]+)(?=([^']*'[^']*')*[^']*$)")


def _interpolations(text: str) -> list[str]:
    """The expressions IPython's ``var_expand`` evaluates: ``{expr}``, ``$name``."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError:
        parts = [(text, None, None, None)]
    exprs: list[str] = []
    for literal, fname, spec, _ in parts:
        exprs += [m.group(2) for m in _DOLLAR.finditer(literal) if m.group(2)[0] != "$"]
        if fname:
            exprs.append(f"{fname}:{spec}" if spec else fname)
    return exprs


# ------------------------------------------------------------------ AST helpers
_NO_KEY = object()


def _const_key(node: ast.expr) -> object:
    """The literal value of a subscript, or ``_NO_KEY`` when it is computed."""
    if isinstance(node, ast.Constant):
        ok = node.value is None or isinstance(node.value, (str, bytes, int, float))
        return node.value if ok else _NO_KEY
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _const_key(node.operand)
        ok = isinstance(inner, (int, float)) and not isinstance(inner, bool)
        return -inner if ok else _NO_KEY  # type: ignore[operator]
    if isinstance(node, ast.Tuple):
        keys = tuple(_const_key(e) for e in node.elts)
        return _NO_KEY if _NO_KEY in keys else keys
    return _NO_KEY


def _chain(node: ast.expr) -> tuple[SymbolPath | None, bool, list[ast.expr], ast.expr]:
    """Split ``a.b["k"][i].c`` into (path ``a.b['k']``, exact=False, computed
    parts ``[i]``, base ``a``).  A computed key cuts the path there, since the
    access may touch any part of what lies before it."""
    steps: list[Step] = []
    computed: list[ast.expr] = []
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        key = _const_key(node.slice) if isinstance(node, ast.Subscript) else None
        if isinstance(node, ast.Attribute):
            steps.append(Attr(node.attr))
        elif key is _NO_KEY:
            steps, computed = [], [*computed, node.slice]
        else:
            steps.append(Item(key))  # type: ignore[arg-type]
        node = node.value
    path = SymbolPath(node.id, tuple(reversed(steps))) if isinstance(node, ast.Name) else None
    return path, not computed, computed, node


def _is_get_ipython(node: ast.expr) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "get_ipython" and not node.args)  # fmt: skip


def _is_true(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _local_names(args: ast.arguments, body: list[ast.stmt]) -> tuple[set[str], set[str]]:
    """(locals, declared globals) of a function body: per Python's rule, a
    binding anywhere in the body makes a name local to all of it."""
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    stores = {a.arg for a in every if a is not None}
    glob: set[str] = set()
    todo: list[ast.AST] = list(body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stores.add(node.name)
            continue
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            walrus = [n.target.id for n in ast.walk(node) if isinstance(n, ast.NamedExpr)]
            stores.update(walrus)  # the only names a comprehension binds outside itself
            continue
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            stores.add(node.id)
        elif isinstance(node, ast.Global):
            glob.update(node.names)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            stores.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            stores.add(node.rest)
        elif isinstance(node, ast.alias) and node.name != "*":
            stores.add(node.asname or node.name.split(".")[0])
        if not isinstance(node, ast.Lambda):
            todo.extend(ast.iter_child_nodes(node))
    return stores - glob, glob


# ------------------------------------------------------------------ the visitor
@dataclass
class _Info:
    """What a cell-level function (or all of a class's methods) does when called."""

    reads: set[SymbolPath] = field(default_factory=set)
    writes: set[SymbolPath] = field(default_factory=set)
    calls: set[str] = field(default_factory=set)


@dataclass
class _Scope:
    """One Python scope.  Module and class bodies run top to bottom, so they
    track what is *definitely* bound so far; function and comprehension
    scopes know their locals up front, as Python does."""

    kind: str  # "module" | "class" | "function" | "comprehension"
    bound: set[SymbolPath] = field(default_factory=set)
    locals: set[str] = field(default_factory=set)
    globals: set[str] = field(default_factory=set)
    info: _Info | None = None  # a cell-level class: where its methods' effects go


class _CellVisitor(ast.NodeVisitor):
    """Walks a cell once, in execution order, sending every use of a global
    either to the cell's refs/defs or to the function whose body it is in."""

    def __init__(self, transform: Transform) -> None:
        self.transform = transform
        self.defs: set[SymbolPath] = set()
        self.refs: set[SymbolPath] = set()
        self.receivers: set[SymbolPath] = set()
        self.calls: set[str] = set()
        self.reasons: list[str] = []
        self.funcs: dict[str, _Info] = {}
        self.imported: set[str] = set()
        self.scopes = [_Scope("module")]
        self.owner: _Info | None = None  # the cell-level function being walked
        self.statement: ast.AST | None = None  # the value of the current Expr statement
        self.lambda_names: list[str] = []

    def run(self, tree: ast.Module) -> None:
        for node in ast.walk(tree):  # the shell's namespace API, wherever it is used
            attr = node.attr if isinstance(node, ast.Attribute) else ""
            if attr in _NAMESPACE_ATTRS and _is_get_ipython(node.value):  # type: ignore[attr-defined]
                self.flag(f"uses get_ipython().{attr}")
        self.walk(tree.body)

    def walk(self, nodes: Iterable[ast.AST]) -> None:
        for node in nodes:
            self.visit(node)

    def flag(self, reason: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)

    def closure(self, name: str) -> _Info:
        """A function's effects plus those of the same-cell functions it uses."""
        out, seen, todo = _Info(), {name}, [name]
        while todo:
            info = self.funcs[todo.pop()]
            out.reads |= info.reads
            out.writes |= info.writes
            out.calls |= info.calls
            fresh = {p.root for p in info.reads if p.root in self.funcs} - seen
            seen |= fresh
            todo += fresh
        return out

    def result(self) -> CellAnalysis:
        done = {name: self.closure(name) for name in self.funcs}
        return CellAnalysis(
            defs=frozenset(self.defs), refs=frozenset(self.refs), calls=frozenset(self.calls),
            functions={n: frozenset(p for p in c.reads if p.root != n) for n, c in done.items()},
            function_writes={n: frozenset(c.writes) for n, c in done.items() if c.writes},
            receivers=frozenset(self.receivers), conservative="; ".join(self.reasons) or None,
        )  # fmt: skip

    # -- resolution
    def covered(self, path: SymbolPath) -> bool:
        """Did the cell itself (definitely) bind this path or a prefix already?"""
        bound, steps = self.scopes[0].bound, path.steps
        return any(SymbolPath(path.root, steps[:n]) in bound for n in range(len(steps) + 1))

    def builtin(self, name: str) -> bool:
        return name in _NOT_REFS and SymbolPath(name) not in self.defs

    def anonymous(self) -> bool:
        """In a lambda (or ``%timeit``) owned by no cell-level name.  It counts as
        called where it appears, since it usually is (``df.apply(lambda r: r * k)``);
        its writes are dropped as their timing is unknown."""
        return self.owner is None and any(s.kind == "function" for s in self.scopes)

    def is_global(self, name: str) -> bool:
        for scope in reversed(self.scopes):
            if scope.kind == "function" and name in scope.globals:
                return True
            if scope.kind in ("function", "comprehension") and name in scope.locals:
                return False
            own_class = scope.kind == "class" and scope is self.scopes[-1]  # methods can't see it
            if own_class and SymbolPath(name) in scope.bound:
                return False
        return True

    def read(self, path: SymbolPath) -> None:
        root = path.root
        if not self.is_global(root) or self.builtin(root):
            return
        if self.owner is not None:
            self.owner.reads.add(path)
            return
        if not self.covered(path):
            self.refs.add(path)
        if root in self.funcs and self.covered(SymbolPath(root)):  # whoever gets f may call it
            self.refs.update(p for p in self.closure(root).reads if not self.covered(p))

    def call(self, name: str) -> None:
        if not self.is_global(name) or self.builtin(name):
            return
        if self.owner is not None:
            self.owner.calls.add(name)
        elif name in self.funcs and self.covered(SymbolPath(name)):
            info = self.closure(name)
            self.calls.update(c for c in info.calls if not self.covered(SymbolPath(c)))
            for w in info.writes:
                self.mutate(w, w.parent(), bind=False)
        elif not self.covered(SymbolPath(name)):
            self.calls.add(name)

    # -- writes
    def bind(self, name: str, scope: _Scope | None = None) -> None:
        scope = scope or self.scopes[-1]
        if scope.kind == "module":
            self.defs.add(SymbolPath(name))
        if scope.kind in ("module", "class"):
            scope.bound.add(SymbolPath(name))
        elif scope.kind == "function" and name in scope.globals and self.owner is not None:
            self.owner.writes.add(SymbolPath(name))

    def unbind(self, path: SymbolPath) -> None:
        scope = self.scopes[-1]
        scope.bound -= {q for q in scope.bound if path.is_prefix_of(q)}

    def mutate(self, path: SymbolPath, receiver: SymbolPath | None, bind: bool) -> None:
        """A write into an existing object: ``obj.a = 1``, ``lst.append(x)``."""
        if not self.is_global(path.root) or self.builtin(path.root) or self.anonymous():
            return
        if self.owner is not None:
            self.owner.writes.add(path)
            return
        self.defs.add(path)
        if receiver is not None and not self.covered(receiver):
            self.receivers.add(receiver)
        if bind and self.scopes[-1].kind == "module":
            self.scopes[0].bound.add(path)

    def ns_call(self, node: ast.AST) -> str | None:
        """``globals()``, or ``locals()``/``vars()`` where they mean the globals."""
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)) or node.args:
            return None
        name = node.func.id
        at_top = not any(s.kind == "function" for s in self.scopes)
        ok = name == "globals" or (name in ("locals", "vars") and at_top)
        return f"{name}()" if ok and self.is_global(name) else None

    def target(self, node: ast.expr) -> None:
        if isinstance(node, ast.Name):
            self.bind(node.id)
        elif isinstance(node, (ast.Tuple, ast.List, ast.Starred)):
            self.walk(node.elts if not isinstance(node, ast.Starred) else [node.value])
        elif isinstance(node, (ast.Attribute, ast.Subscript)):
            path, exact, computed, base = _chain(node)
            self.walk(computed)
            if path is not None:
                self.mutate(path, path.parent() if exact else path, bind=exact)
            elif self.ns_call(base):
                self.flag(f"writes through {self.ns_call(base)}")
            else:
                self.visit(base)

    def branches(self, *blocks: list[ast.AST]) -> None:
        """Run alternative blocks from the same state; afterwards only what all
        of them bind counts as bound (``if c: x = 1`` may leave ``x`` upstream)."""
        scope = self.scopes[-1]
        start, result = set(scope.bound), None
        for block in blocks:
            scope.bound = set(start)
            self.walk(block)
            result = scope.bound if result is None else result & scope.bound
        scope.bound = start if result is None else result

    # -- statements
    def visit_Expr(self, node: ast.Expr) -> None:
        self.statement = node.value
        self.visit(node.value)

    def visit_Assign(self, node: ast.Assign | ast.AnnAssign) -> None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if isinstance(node, ast.AnnAssign) and self.scopes[-1].kind != "function":
            self.visit(node.annotation)
        if node.value is not None:
            if isinstance(node.value, ast.Lambda) and all(isinstance(t, ast.Name) for t in targets):
                self.lambda_names = [t.id for t in targets]  # type: ignore[attr-defined]
            self.visit(node.value)
            self.walk(targets)

    visit_AnnAssign = visit_Assign

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        self.read_chain(node.target)
        self.target(node.target)

    def visit_Delete(self, node: ast.Delete) -> None:
        for t in node.targets:
            self.delete(t)

    def delete(self, node: ast.expr) -> None:
        """``del x`` writes ``x`` and needs it to exist, so it is a ref too."""
        if isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                self.delete(elt)
            return
        path, exact, computed, _ = _chain(node)
        self.walk(computed)
        if path is None:
            self.target(node)
        else:
            self.read(path)
            if isinstance(node, ast.Name):
                self.bind(node.id)
            else:
                self.mutate(path, path.parent() if exact else path, bind=False)
            self.unbind(path)

    def visit_For(self, node: ast.For | ast.AsyncFor | ast.While) -> None:
        self.visit(node.test if isinstance(node, ast.While) else node.iter)
        head = [] if isinstance(node, ast.While) else [node.target]
        self.branches([*head, *node.body, *node.orelse], [])  # may run zero times

    visit_AsyncFor = visit_While = visit_For

    def visit_If(self, node: ast.If) -> None:
        self.visit(node.test)
        self.branches(list(node.body), list(node.orelse))

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.walk([item.context_expr, *([item.optional_vars] if item.optional_vars else [])])
        self.walk(node.body)

    visit_AsyncWith = visit_With

    def visit_Try(self, node: ast.Try) -> None:
        self.branches([*node.body, *node.orelse], *([h] for h in node.handlers))
        self.walk(node.finalbody)

    visit_TryStar = visit_Try

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self.walk([node.type] if node.type else [])
        if node.name:
            self.bind(node.name)
        self.walk(node.body)
        if node.name:  # Python deletes it after the handler
            self.unbind(SymbolPath(node.name))

    def visit_Match(self, node: ast.Match) -> None:
        self.visit(node.subject)
        last = node.cases[-1].pattern if node.cases else None
        total = isinstance(last, ast.MatchAs) and not last.pattern and not node.cases[-1].guard
        self.branches(*([c] for c in node.cases), *([] if total else [[]]))

    def visit_match_case(self, node: ast.match_case) -> None:
        patterns = list(ast.walk(node.pattern))
        for p in patterns:  # values compared against are reads
            if isinstance(p, ast.MatchValue):
                self.visit(p.value)
            elif isinstance(p, ast.MatchClass):
                self.visit(p.cls)
            elif isinstance(p, ast.MatchMapping):
                self.walk(p.keys)
        for p in patterns:  # captures are binds
            name = getattr(p, "rest" if isinstance(p, ast.MatchMapping) else "name", None)
            if isinstance(name, str):
                self.bind(name)
        self.walk([*([node.guard] if node.guard else []), *node.body])

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*" and isinstance(node, ast.ImportFrom):
                self.flag(f"star import from {'.' * node.level}{node.module or ''}")
                continue
            if alias.name == "__main__":
                self.flag("imports __main__ (can write any global)")
            name = alias.asname or alias.name.split(".")[0]
            self.imported.add(name)
            self.bind(name)

    visit_ImportFrom = visit_Import

    def visit_TypeAlias(self, node: ast.AST) -> None:
        self.walk([node.value, node.name])  # type: ignore[attr-defined]

    # -- definitions
    def owner_for(self, name: str | None) -> _Info | None:
        """Where a new function's effects go: its own record at cell level,
        the class's record for a method, else the enclosing function's."""
        if self.owner is not None:
            return self.owner
        if name is not None and self.scopes[-1].kind == "module":
            return self.funcs.setdefault(name, _Info())
        return next((s.info for s in reversed(self.scopes) if s.info is not None), None)

    def function(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, owner: _Info | None
    ) -> None:
        args = node.args  # defaults, annotations, decorators run at definition time
        self.walk([*args.defaults, *(d for d in args.kw_defaults if d is not None)])
        if not isinstance(node, ast.Lambda):
            every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
            self.walk(a.annotation for a in every if a is not None and a.annotation)
            self.walk([*node.decorator_list, *([node.returns] if node.returns else [])])
        body = [ast.Return(node.body)] if isinstance(node, ast.Lambda) else node.body
        local, glob = _local_names(args, body)
        saved, self.owner = self.owner, owner
        self.scopes.append(_Scope("function", locals=local, globals=glob))
        try:
            self.walk(body)
        finally:
            self.scopes.pop()
            self.owner = saved

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.function(node, self.owner_for(node.name))
        self.bind(node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        names, self.lambda_names = self.lambda_names, []
        if not names:  # anonymous: its reads count where it is created
            self.function(node, self.owner)
        elif self.owner is None and self.scopes[-1].kind == "module":
            info = self.funcs.setdefault(names[0], _Info())  # ``g = lambda: k``
            self.funcs.update(dict.fromkeys(names, info))
            self.function(node, info)
        else:
            self.function(node, self.owner_for(None))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.walk([*node.decorator_list, *node.bases, *node.keywords])
        at_top = self.owner is None and self.scopes[-1].kind == "module"
        info = self.funcs.setdefault(node.name, _Info()) if at_top else None
        self.scopes.append(_Scope("class", info=info))
        try:
            self.walk(node.body)
        finally:
            self.scopes.pop()
        self.bind(node.name)

    def visit_ListComp(
        self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp
    ) -> None:
        gens = node.generators
        self.visit(gens[0].iter)  # the only part evaluated in the enclosing scope
        stored = (n for g in gens for n in ast.walk(g.target) if isinstance(n, ast.Name))
        names = {n.id for n in stored if isinstance(n.ctx, ast.Store)}
        self.scopes.append(_Scope("comprehension", locals=names))
        try:
            for i, gen in enumerate(gens):
                self.walk([*([gen.iter] if i else []), gen.target, *gen.ifs])
            self.walk([node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt])
        finally:
            self.scopes.pop()

    visit_SetComp = visit_GeneratorExp = visit_DictComp = visit_ListComp

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)  # binds in the scope around any comprehension
        scope = next(s for s in reversed(self.scopes) if s.kind != "comprehension")
        self.bind(node.target.id, scope)

    # -- expressions
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.read(SymbolPath(node.id))
        elif isinstance(node.ctx, ast.Store):
            self.bind(node.id)

    def visit_Attribute(self, node: ast.Attribute | ast.Subscript) -> None:
        if isinstance(node.ctx, ast.Load):
            self.read_chain(node)
        else:
            self.target(node)

    visit_Subscript = visit_Attribute

    def read_chain(self, node: ast.expr) -> None:
        path, _, computed, base = _chain(node)
        if path is not None:
            self.read(path)
        elif self.ns_call(base):
            self.flag(f"reads {self.ns_call(base)}")
        else:
            self.visit(base)
        self.walk(computed)

    def visit_Call(self, node: ast.Call) -> None:
        statement, self.statement = node is self.statement, None
        func, args = node.func, [*node.args, *node.keywords]
        if isinstance(func, ast.Attribute) and _is_get_ipython(func.value):
            if self.ipython_call(func.attr, node):
                return
        elif isinstance(func, ast.Name) and self.is_global(func.id):
            if func.id in ("exec", "eval"):
                self.flag(f"calls {func.id}()")
            elif self.ns_call(node):
                self.flag(f"reads {self.ns_call(node)}")
            elif func.id in ("setattr", "delattr", "getattr") and self.attr_builtin(func.id, node):
                return
            self.call(func.id)
        elif isinstance(func, ast.Attribute) and (
            (func.attr in MUTATING_METHODS and (statement or func.attr in _RETURNING))
            or any(k.arg == "inplace" and _is_true(k.value) for k in node.keywords)
        ):
            path, _, computed, base = _chain(func.value)
            if path is not None and path.root not in self.imported | _MODULE_ROOTS:
                self.read(path)
                self.mutate(path, None, bind=False)
                self.walk([*computed, *args])
                return
            if path is None and self.ns_call(base):
                self.flag(f"writes through {self.ns_call(base)}")
                self.walk(args)
                return
        self.generic_visit(node)

    def attr_builtin(self, which: str, node: ast.Call) -> bool:
        """``setattr(obj, "a", v)`` is ``obj.a = v``: keep the path as precise."""
        if len(node.args) < 2:
            return False
        path, exact, computed, _ = _chain(node.args[0])
        if path is None:
            return False
        self.walk([*computed, *node.args[1:], *node.keywords])
        key, target = node.args[1], path
        if exact and isinstance(key, ast.Constant) and isinstance(key.value, str):
            target = path.child(Attr(key.value))
        if which == "getattr":
            self.read(target)
        else:
            self.mutate(target, path, bind=False)
        return True

    # -- IPython calls, as the transformer writes them
    def ipython_call(self, method: str, node: ast.Call) -> bool:
        """Understand ``get_ipython().run_line_magic(...)`` and friends; False
        means: visit it as ordinary code (its arguments are not literals)."""
        texts = [a.value for a in node.args if isinstance(a, ast.Constant)]
        if (
            node.keywords
            or len(texts) != len(node.args)
            or not all(isinstance(t, str) for t in texts)
        ):
            if method == "run_line_magic" and texts[:1] and texts[0] in _OPAQUE_MAGICS:
                self.flag(f"runs %{texts[0]}")
            return False
        if method == "run_line_magic" and len(texts) == 2:
            self.line_magic(*texts)
        elif method == "run_cell_magic" and len(texts) == 3:
            self.cell_magic(*texts)
        elif method in ("system", "getoutput") and len(texts) == 1:
            self.expand(texts[0])
        elif method == "magic" and len(texts) == 1:
            self.line_magic(*texts[0].lstrip("%").partition(" ")[::2])
        return method not in _NAMESPACE_ATTRS

    def expand(self, text: str) -> None:
        for expr in _interpolations(text):
            try:
                tree = ast.parse(expr.strip(), mode="eval")
            except (SyntaxError, ValueError):
                continue
            self.visit(tree.body)

    def code(self, code: str, own_scope: bool = False) -> None:
        """Analyse a magic's Python as if it stood in the cell (``%time``), or
        as the body of a function called right here (``%timeit``)."""
        try:
            tree = _parse(self.transform(code))
        except Exception:  # the magic reports its own errors at run time
            return
        if not own_scope:
            return self.run(tree)
        no_args = ast.arguments([], [], None, [], [], None, [])
        self.scopes.append(_Scope("function", locals=_local_names(no_args, tree.body)[0]))
        try:
            self.run(tree)
        finally:
            self.scopes.pop()

    def line_magic(self, name: str, line: str) -> None:
        if name in _OPAQUE_MAGICS or (name == "store" and "-r" in line.split()):
            self.flag(f"runs %{name}")
        elif name in _CODE_MAGICS:
            self.code(_options(line, _CODE_MAGICS[name])[1])
        elif name == "timeit":
            self.timeit(line, "")
        elif name == "xdel":
            for var in filter(str.isidentifier, line.split()):
                self.read(SymbolPath(var))
                self.bind(var)
        elif name not in _NO_EXPAND:
            self.expand(line)

    def timeit(self, line: str, body: str) -> None:
        opts, setup = _options(line, ("-n", "-r", "-p", "-v"))
        self.code(f"{setup}\n{body}", own_scope=True)
        if opts.get("-v", "").isidentifier():  # ``-v name`` stores the result
            self.bind(opts["-v"])

    def cell_magic(self, name: str, line: str, body: str) -> None:
        if name in _CODE_MAGICS:
            rest = _options(line, _CODE_MAGICS[name])[1]
            self.code(body if name == "capture" else f"{rest}\n{body}")
            if name == "capture" and rest.split()[:1] and rest.split()[0].isidentifier():
                self.bind(rest.split()[0])  # ``%%capture out`` stores the output
        elif name == "timeit":
            self.timeit(line, body)
        elif name in _TEXT_MAGICS:
            self.expand(line)
            opts = _options(line, ("--out", "--err", "--proc"))[0] if name in _SCRIPT_MAGICS else {}
            for var in filter(str.isidentifier, opts.values()):
                self.bind(var)  # ``%%bash --out v`` stores the output
        else:
            self.flag(f"runs cell magic %%{name}")


def _problem(exc: BaseException) -> SyntaxProblem:
    if isinstance(exc, SyntaxError):
        return SyntaxProblem(exc.msg or str(exc), exc.lineno, exc.offset)
    return SyntaxProblem(str(exc) or type(exc).__name__)


def analyze(source: str, transform: Transform | None = None) -> CellAnalysis:
    """Analyse one cell's source.

    ``transform`` turns IPython syntax into Python (the kernel passes
    ``shell.transform_cell``); without it a small built-in transformer
    handles ``%magic``, ``%%cell_magic``, ``!cmd`` and ``x = !cmd``.
    Never raises for bad input: a syntax error (or a failing ``transform``)
    comes back in ``error``, and anything the walk itself trips over (say,
    absurdly deep nesting) makes the cell conservative.
    """
    rewrite = transform or ipython_to_python
    try:
        if not isinstance(source, str):
            raise TypeError(f"cell source must be str, not {type(source).__name__}")
        code = rewrite(source)
        if not isinstance(code, str):
            raise TypeError(f"transform returned {type(code).__name__}, not str")
        tree = _parse(code)
    except Exception as exc:
        return CellAnalysis(error=_problem(exc))
    visitor = _CellVisitor(rewrite)
    try:
        visitor.run(tree)
    except Exception as exc:
        visitor.flag(f"could not analyse the cell ({type(exc).__name__})")
    return visitor.result()
