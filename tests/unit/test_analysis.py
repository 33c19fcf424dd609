"""Unit tests for reactive.analysis: what a cell defines, reads, calls and mutates."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive.analysis import (
    MUTATING_METHODS,
    CellAnalysis,
    SyntaxProblem,
    analyze,
    ipython_to_python,
)
from reactive.paths import Item, SymbolPath

P = SymbolPath.of


def names(*roots: str) -> set[SymbolPath]:
    return {P(r) for r in roots}


# --------------------------------------------------------------- assignment
def test_plain_assignment_defines_and_reads() -> None:
    a = analyze("x = 1\ny = x + z")
    assert a.defs == names("x", "y")
    assert a.refs == names("z")
    assert a.conservative is None and a.error is None


def test_augmented_assignment_defines_and_reads() -> None:
    a = analyze("x += 1")
    assert a.defs == names("x")
    assert a.refs == names("x")


def test_augmented_assignment_after_local_bind_is_not_a_ref() -> None:
    assert analyze("x = 0\nx += 1").refs == set()


def test_augmented_assignment_on_path() -> None:
    a = analyze("cfg['n'] += 1")
    assert a.defs == {P("cfg", Item("n"))}
    assert a.refs == {P("cfg", Item("n"))}
    assert a.receivers == names("cfg")


def test_annotated_assignment() -> None:
    a = analyze("x: int = y")
    assert a.defs == names("x")
    assert a.refs == names("y")


def test_bare_annotation_reads_annotation_but_binds_nothing() -> None:
    a = analyze("x: Foo")
    assert a.defs == set()
    assert a.refs == names("Foo")


def test_unpacking_tuple_list_starred() -> None:
    a = analyze("a, (b, *c) = xs\n[d, e] = ys")
    assert a.defs == names("a", "b", "c", "d", "e")
    assert a.refs == names("xs", "ys")


def test_chained_assignment() -> None:
    a = analyze("a = b = c")
    assert a.defs == names("a", "b")
    assert a.refs == names("c")


def test_del_name_is_a_def_and_needs_the_name() -> None:
    a = analyze("del x")
    assert a.defs == names("x")
    assert a.refs == names("x")


def test_del_unbinds_for_later_reads() -> None:
    a = analyze("x = 1\ndel x\nprint(x)")
    assert a.defs == names("x")
    assert a.refs == names("x")


def test_del_tuple_of_names() -> None:
    assert analyze("del a, (b, c)").defs == names("a", "b", "c")


def test_del_constant_subscript() -> None:
    a = analyze("del d['k']")
    assert a.defs == {P("d", Item("k"))}
    assert a.refs == {P("d", Item("k"))}
    assert a.receivers == names("d")


# ------------------------------------------------------------------ imports
def test_imports_define_their_bound_names() -> None:
    a = analyze("import a.b\nimport a.b as c\nfrom m import x as y\nfrom m import z")
    assert a.defs == names("a", "c", "y", "z")
    assert a.refs == set()


def test_star_import_is_conservative() -> None:
    a = analyze("from numpy import *\nx = 1")
    assert a.conservative is not None and "star import" in a.conservative
    assert "numpy" in a.conservative
    assert a.defs == names("x")


def test_relative_star_import_is_conservative() -> None:
    assert "star import from ." in (analyze("from . import *").conservative or "")


def test_import_main_is_conservative() -> None:
    assert "__main__" in (analyze("import __main__").conservative or "")


# ---------------------------------------------------------------- functions
def test_function_body_reads_go_to_functions_not_refs() -> None:
    a = analyze("def f(a): return a + k")
    assert a.defs == names("f")
    assert a.refs == set()
    assert a.functions == {"f": names("k")}
    assert a.calls == set()


def test_defaults_decorators_and_annotations_are_evaluated_at_definition() -> None:
    a = analyze("@deco(opt)\ndef f(a=default, *, b: T = kd) -> R:\n    return a")
    assert a.refs == names("deco", "opt", "default", "T", "kd", "R")
    assert a.calls == {"deco"}
    assert a.functions == {"f": set()}


def test_function_locals_params_and_closures() -> None:
    src = "def outer(p):\n    y = 1\n    def inner():\n        return y + p + k\n    return inner\n"
    a = analyze(src)
    assert a.functions == {"outer": names("k")}
    assert a.defs == names("outer")


def test_nonlocal_is_not_global() -> None:
    src = "def f():\n    n = 0\n    def g():\n        nonlocal n\n        n += 1\n    return g"
    a = analyze(src)
    assert a.functions == {"f": set()}
    assert a.function_writes == {}


def test_function_reads_paths() -> None:
    a = analyze("def f():\n    return cfg['a'].b + s.value")
    assert a.functions == {"f": {P("cfg", Item("a"), "b"), P("s", "value")}}


def test_transitive_reads_through_same_cell_functions() -> None:
    a = analyze("def g():\n    return k\ndef f():\n    return g()")
    assert a.functions == {"g": names("k"), "f": names("g", "k")}


def test_transitive_reads_do_not_depend_on_definition_order() -> None:
    a = analyze("def f():\n    return g()\ndef g():\n    return k")
    assert a.functions["f"] == names("g", "k")


def test_recursive_function_does_not_list_itself() -> None:
    a = analyze("def fact(n):\n    return 1 if n < 2 else n * fact(n - 1) * scale")
    assert a.functions == {"fact": names("scale")}


def test_calling_own_function_at_top_level_makes_its_reads_refs() -> None:
    a = analyze("def f():\n    return k\ny = f()")
    assert a.refs == names("k")
    assert a.calls == set()


def test_own_function_reads_of_names_bound_earlier_are_not_refs() -> None:
    a = analyze("k = 1\ndef f():\n    return k\nf()")
    assert a.refs == set()
    assert a.functions == {"f": names("k")}


def test_passing_own_function_makes_its_reads_refs() -> None:
    a = analyze("def h(_):\n    return q\nbtn.on_click(h)")
    assert a.refs == {P("btn", "on_click"), P("q")}


def test_global_writes_recorded_on_the_function_only() -> None:
    a = analyze("def f():\n    global x\n    x = 1")
    assert a.defs == names("f")
    assert a.function_writes == {"f": names("x")}
    assert a.functions == {"f": set()}


def test_global_writes_become_defs_when_called_in_the_cell() -> None:
    a = analyze("def f():\n    global x\n    x += 1\nf()")
    assert a.defs == names("f", "x")
    assert a.refs == names("x")


def test_global_writes_are_transitive() -> None:
    a = analyze("def f():\n    global x\n    x = 1\ndef g():\n    f()\ng()")
    assert a.function_writes == {"f": names("x"), "g": names("x")}
    assert a.defs == names("f", "g", "x")


def test_mutations_of_globals_inside_functions_are_function_writes() -> None:
    a = analyze("def f():\n    cfg['a'] = 1\n    lst.append(2)")
    assert a.function_writes == {"f": {P("cfg", Item("a")), P("lst")}}
    assert a.functions == {"f": names("lst")}
    assert a.defs == names("f")
    assert a.receivers == set()


def test_calls_of_other_cells_functions() -> None:
    a = analyze("y = f(x)\nobj.method()\nprint(y)")
    assert a.calls == {"f"}
    assert a.refs == {P("f"), P("x"), P("obj", "method")}


def test_calls_made_by_own_function_surface_when_it_is_called() -> None:
    a = analyze("def f():\n    return helper(1)\nf()")
    assert a.calls == {"helper"}
    assert a.refs == names("helper")


def test_async_function() -> None:
    a = analyze("async def fetch_all():\n    return await get(url)")
    assert a.functions == {"fetch_all": names("get", "url")}
    assert a.refs == set()


# ------------------------------------------------------------------ classes
def test_class_body_runs_at_definition_and_methods_go_to_functions() -> None:
    src = "class C(Base):\n    a = 1\n    b = a + q\n    def m(self):\n        return r\n"
    a = analyze(src)
    assert a.defs == names("C")
    assert a.refs == names("Base", "q")
    assert a.functions == {"C": names("r")}


def test_methods_do_not_see_class_attributes() -> None:
    a = analyze("class C:\n    a = 1\n    def m(self):\n        return a")
    assert a.functions == {"C": names("a")}


def test_instantiating_own_class_reads_its_methods_globals() -> None:
    a = analyze("class C:\n    def __init__(self):\n        self.v = k\nc = C()")
    assert a.refs == names("k")


def test_class_method_global_writes() -> None:
    a = analyze("class C:\n    def bump(self):\n        global n\n        n += 1")
    assert a.function_writes == {"C": names("n")}


# ------------------------------------------------------------------ lambdas
def test_lambda_assigned_to_a_name_is_a_function() -> None:
    a = analyze("g = lambda: k")
    assert a.defs == names("g")
    assert a.refs == set()
    assert a.functions == {"g": names("k")}


def test_lambda_defaults_are_refs() -> None:
    a = analyze("h = lambda x=d: x + k")
    assert a.refs == names("d")
    assert a.functions == {"h": names("k")}


def test_anonymous_lambda_reads_count_where_it_is_created() -> None:
    # Deviation from "lambda bodies are not refs": sorted/apply call it right away.
    a = analyze("ys = sorted(xs, key=lambda v: v * k)")
    assert a.refs == names("xs", "k")
    assert a.functions == {}


def test_lambda_in_class_body_is_a_method() -> None:
    a = analyze("class A:\n    f = lambda self: k\n    g = sorted(xs, key=lambda v: v * m)")
    assert a.functions == {"A": names("k")}
    assert a.refs == names("xs", "m")


# ----------------------------------------------------------- comprehensions
def test_comprehension_variables_are_neither_defs_nor_refs() -> None:
    a = analyze("ys = [i * j for i in xs if i > t]")
    assert a.defs == names("ys")
    assert a.refs == names("xs", "t", "j")


def test_nested_comprehension() -> None:
    assert analyze("[(i, j) for i in a for j in i]").refs == names("a")


def test_dict_set_and_generator_comprehensions() -> None:
    a = analyze("{k: v * f for k, v in items}\n{s for s in ss}\nsum(g for g in gs)")
    assert a.refs == names("items", "f", "ss", "gs")
    assert a.defs == set()


def test_comprehension_iterable_sees_cell_bindings() -> None:
    assert analyze("xs = [1]\nys = [x + 1 for x in xs]").refs == set()


def test_walrus_in_comprehension_binds_in_the_cell() -> None:
    a = analyze("[y := f(x) for x in xs]")
    assert a.defs == names("y")
    assert a.refs == names("f", "xs")


def test_walrus() -> None:
    a = analyze("(n := 10)\nprint(n)")
    assert a.defs == names("n")
    assert a.refs == set()


# ----------------------------------------------------------- control flow
def test_with_as() -> None:
    a = analyze("with open(p) as fh:\n    data = fh.read()")
    assert a.defs == names("fh", "data")
    assert a.refs == names("p")


def test_for_loop() -> None:
    a = analyze("for i in items:\n    total = i")
    assert a.defs == names("i", "total")
    assert a.refs == names("items")


def test_loop_bindings_are_not_definite_after_the_loop() -> None:
    assert analyze("for i in items:\n    pass\nprint(i)").refs == names("items", "i")


def test_except_as() -> None:
    a = analyze("try:\n    go()\nexcept MyError as e:\n    log(e)")
    assert a.defs == names("e")
    assert a.refs == names("go", "MyError", "log")


def test_name_bound_on_one_branch_is_still_read_from_upstream() -> None:
    a = analyze("if c:\n    x = 1\nprint(x)")
    assert a.defs == names("x")
    assert a.refs == names("c", "x")


def test_name_bound_on_every_branch_is_local() -> None:
    assert analyze("if c:\n    x = 1\nelse:\n    x = 2\nprint(x)").refs == names("c")
    src = "try:\n    import foo\nexcept ImportError:\n    foo = None\nfoo.bar()"
    assert analyze(src).refs == set()


def test_while_loop() -> None:
    a = analyze("while n > 0:\n    n -= step")
    assert a.refs == names("n", "step")
    assert a.defs == names("n")


def test_match_captures_define_names() -> None:
    src = (
        "match cmd:\n"
        "    case Point(x=px, y=0):\n        pass\n"
        "    case [first, *rest]:\n        pass\n"
        "    case {'k': v, **others}:\n        pass\n"
        "    case Color.RED:\n        pass\n"
        "    case other if other > limit:\n        pass\n"
        "    case _:\n        pass\n"
    )
    a = analyze(src)
    assert a.defs == names("px", "first", "rest", "v", "others", "other")
    assert a.refs == {P("cmd"), P("Point"), P("Color", "RED"), P("limit")}


def test_top_level_await_async_with_async_for() -> None:
    a = analyze("x = await fetch(u)")
    assert a.defs == names("x")
    assert a.refs == names("fetch", "u")
    src = "async with lock as held:\n    y = 1\nasync for r in stream():\n    use(r)"
    b = analyze(src)
    assert b.error is None
    assert b.defs == names("held", "y", "r")
    assert b.refs == names("lock", "stream", "use")


# ---------------------------------------------------------- paths: reads
def test_constant_subscript_reads_are_paths() -> None:
    assert analyze("d['a']").refs == {P("d", Item("a"))}
    assert analyze("cfg['a']['b'].c").refs == {P("cfg", Item("a"), Item("b"), "c")}


@pytest.mark.parametrize(
    ("src", "key"),
    [
        ("d[0]", 0),
        ("d[-1]", -1),
        ("d[b'x']", b"x"),
        ("d[(1, 'a')]", (1, "a")),
        ("d[1, 'a']", (1, "a")),
        ("d[True]", True),
        ("d[None]", None),
        ("d[1.5]", 1.5),
    ],
)
def test_constant_keys(src: str, key: object) -> None:
    assert analyze(src).refs == {P("d", Item(key))}  # type: ignore[arg-type]


def test_computed_key_reads_whole_object_and_key() -> None:
    assert analyze("d[k]").refs == names("d", "k")
    assert analyze("d[k]['a'].b").refs == names("d", "k")
    assert analyze("cfg['a'][i]").refs == {P("cfg", Item("a")), P("i")}


def test_slices_read_the_whole_object() -> None:
    assert analyze("x[1:3]").refs == names("x")
    assert analyze("x[a:b]").refs == names("x", "a", "b")


def test_attribute_reads() -> None:
    assert analyze("s.value").refs == {P("s", "value")}
    assert analyze("np.sin(x)").refs == {P("np", "sin"), P("x")}


def test_reads_on_call_results_read_only_the_call() -> None:
    assert analyze("f(a).b['c']").refs == names("f", "a")


def test_write_then_read_of_same_path_is_local() -> None:
    a = analyze("d['a'] = 1\nprint(d['a'], d['b'], d)")
    assert a.refs == {P("d", Item("b")), P("d")}


def test_getattr_with_constant_name_is_a_path_read() -> None:
    assert analyze("getattr(cfg, 'x')").refs == {P("cfg", "x")}


# --------------------------------------------------------- paths: writes
def test_attribute_write_defines_path_and_records_receiver() -> None:
    a = analyze("obj.a = 1")
    assert a.defs == {P("obj", "a")}
    assert a.receivers == names("obj")
    assert a.refs == set()


def test_widget_value_write() -> None:
    a = analyze("s.value = 3")
    assert a.defs == {P("s", "value")}
    assert a.receivers == names("s")


def test_subscript_write_defines_path_and_records_receiver() -> None:
    a = analyze("d['a'] = 1")
    assert a.defs == {P("d", Item("a"))}
    assert a.receivers == names("d")
    assert a.refs == set()


def test_nested_write_receiver_is_the_parent_path() -> None:
    a = analyze("cfg['a'].b = 1")
    assert a.defs == {P("cfg", Item("a"), "b")}
    assert a.receivers == {P("cfg", Item("a"))}


def test_computed_subscript_write_defines_whole_object() -> None:
    a = analyze("d[k] = 1")
    assert a.defs == names("d")
    assert a.receivers == names("d")
    assert a.refs == names("k")


def test_slice_write() -> None:
    a = analyze("x[1:3] = y")
    assert a.defs == names("x")
    assert a.receivers == names("x")
    assert a.refs == names("y")


def test_receiver_created_by_the_cell_is_not_recorded() -> None:
    a = analyze("d = {}\nd['a'] = 1")
    assert a.defs == {P("d"), P("d", Item("a"))}
    assert a.receivers == set()


def test_setattr_is_an_attribute_write() -> None:
    a = analyze("setattr(obj, 'a', 1)")
    assert a.defs == {P("obj", "a")}
    assert a.receivers == names("obj")
    b = analyze("setattr(obj, name, 1)")
    assert b.defs == names("obj")
    assert b.refs == names("name")


# -------------------------------------------------------- mutating calls
@pytest.mark.parametrize(
    "src",
    [
        "x.append(1)", "x.extend(v)", "x.insert(0, v)", "x.remove(v)", "x.pop()",
        "x.clear()", "x.sort()", "x.reverse()", "x.update(v)", "x.setdefault('k', v)",
        "x.popitem()", "x.add(v)", "x.discard(v)", "x.fill(0)", "x.resize((2, 2))",
        "x.__setitem__('a', v)", "x.drop(columns=['a'], inplace=True)",
        "x.fillna(0, inplace=True)", "x.anything(inplace=True)",
    ],
)  # fmt: skip
def test_mutating_calls_write_and_read_the_receiver(src: str) -> None:
    a = analyze(src)
    assert P("x") in a.defs
    assert P("x") in a.refs
    assert a.defs == names("x")


def test_mutating_method_list_is_documented_constant() -> None:
    assert {"append", "update", "add", "sort", "fill", "__setitem__"} <= MUTATING_METHODS


def test_mutating_call_on_a_path() -> None:
    a = analyze("cfg['items'].append(x)")
    assert a.defs == {P("cfg", Item("items"))}
    assert a.refs == {P("cfg", Item("items")), P("x")}


def test_value_returning_mutator_counts_in_expressions() -> None:
    a = analyze("x = lst.pop()")
    assert a.defs == names("x", "lst")
    assert a.refs == names("lst")


def test_pure_functions_with_mutator_names_are_not_writes() -> None:
    assert analyze("y = np.append(a, v)").defs == names("y")
    assert analyze("os.remove(p)").defs == set()
    assert analyze("import heapq\nheapq.clear()").defs == names("heapq")


def test_non_mutating_method_is_a_read() -> None:
    a = analyze("obj.set_value(3)")
    assert a.defs == set()
    assert a.refs == {P("obj", "set_value")}


def test_mutating_local_object_in_cell() -> None:
    a = analyze("lst = []\nlst.append(1)")
    assert a.defs == names("lst")
    assert a.refs == set()


# -------------------------------------------------------- builtins, calls
def test_builtins_and_get_ipython_are_not_refs() -> None:
    a = analyze("print(len(x))\nip = get_ipython()\ndisplay(ip)")
    assert a.refs == names("x")
    assert a.calls == set()


def test_rebound_builtin_is_local() -> None:
    a = analyze("len = 3\nprint(len)")
    assert a.defs == names("len")
    assert a.refs == set()


# ------------------------------------------------------------- conservative
@pytest.mark.parametrize(
    ("src", "reason"),
    [
        ("exec(code)", "calls exec()"),
        ("y = eval('1 + x')", "calls eval()"),
        ("globals()['x'] = 1", "writes through globals()"),
        ("globals().update(d)", "writes through globals()"),
        ("del globals()['x']", "writes through globals()"),
        ("locals()['x'] = 1", "writes through locals()"),
        ("vars()['x'] = 1", "writes through vars()"),
        ("if 'df' not in globals():\n    df = 1", "reads globals()"),
        ("y = globals()['x']", "reads globals()"),
        ("get_ipython().user_ns['x'] = 1", "uses get_ipython().user_ns"),
        ("get_ipython().push({'a': 1})", "uses get_ipython().push"),
        ("get_ipython().run_line_magic('run', script)", "runs %run"),
        ("def f():\n    exec(s)", "calls exec()"),
    ],
)
def test_conservative_cells(src: str, reason: str) -> None:
    a = analyze(src)
    assert a.error is None
    assert a.conservative is not None and reason in a.conservative


def test_conservative_cell_keeps_what_it_understood() -> None:
    a = analyze("x = f(y)\nexec(code)")
    assert a.defs == names("x")
    assert a.refs == names("f", "y", "code")
    assert a.conservative == "calls exec()"


def test_several_reasons_are_joined() -> None:
    a = analyze("exec(a)\nfrom m import *")
    assert a.conservative == "calls exec(); star import from m"


@pytest.mark.parametrize(
    "src",
    ["vars(obj)", "def f():\n    return locals()", "exec_ = 1", "my.exec(s)", "import os"],
)
def test_not_conservative(src: str) -> None:
    assert analyze(src).conservative is None


def test_shadowed_exec_is_not_conservative() -> None:
    assert analyze("def f(exec):\n    return exec(1)").conservative is None


# ---------------------------------------------------------------- magics
def test_time_magic_runs_in_the_namespace() -> None:
    a = analyze("%time y = f(q)")
    assert a.defs == names("y")
    assert a.refs == names("f", "q")


def test_time_cell_magic() -> None:
    a = analyze("%%time\nz = q\nw = z + 1")
    assert a.defs == names("z", "w")
    assert a.refs == names("q")


def test_timeit_only_contributes_refs() -> None:
    a = analyze("%timeit -n 10 -r 3 x = f(a)")
    assert a.defs == set()
    assert a.refs == names("f", "a")


def test_timeit_cell_magic_with_setup() -> None:
    a = analyze("%%timeit -n1 a = setup()\nf(a, b)")
    assert a.defs == set()
    assert a.refs == names("setup", "f", "b")


def test_timeit_v_option_stores_result() -> None:
    assert analyze("%timeit -v res f(a)").defs == names("res")


def test_prun_and_debug_arguments_are_code() -> None:
    assert analyze("%prun -s cumulative -l 5 g(x)").refs == names("g", "x")
    assert analyze("%debug --breakpoint f.py:3 f(x)").refs == names("f", "x")
    assert analyze("%%prun\nr = g(x)").defs == names("r")


def test_capture_defines_output_and_runs_body() -> None:
    a = analyze("%%capture --no-stdout out\nz = w")
    assert a.defs == names("out", "z")
    assert a.refs == names("w")


def test_memoize_body_is_ordinary_python() -> None:
    a = analyze("%%memoize --disk\nres = model(alpha)")
    assert a.defs == names("res")
    assert a.refs == names("model", "alpha")
    assert a.conservative is None


def test_magic_body_with_syntax_error_contributes_nothing() -> None:
    a = analyze("%%time\nx = (")
    assert a.error is None
    assert a.defs == set()


@pytest.mark.parametrize(
    ("src", "magic"),
    [
        ("%run script.py", "%run"),
        ("%run -i script.py", "%run"),
        ("%load snippet.py", "%load"),
        ("%reset -f", "%reset"),
        ("%store -r data", "%store"),
        ("%autoreload 2", "%autoreload"),
        ("%%script_unknown\nstuff", "%%script_unknown"),
        ("%%R\nx <- 1", "%%R"),
    ],
)
def test_opaque_magics_are_conservative(src: str, magic: str) -> None:
    a = analyze(src)
    assert a.conservative is not None and magic in a.conservative


@pytest.mark.parametrize(
    "name",
    ["bash", "sh", "html", "HTML", "javascript", "js", "latex", "markdown", "svg",
     "writefile f.py", "perl", "ruby", "script python", "file f.txt"],
)  # fmt: skip
def test_non_python_cell_magics_contribute_nothing(name: str) -> None:
    a = analyze(f"%%{name}\nx = 1 + y\n<b>{{z}}</b>")
    assert a == CellAnalysis()


@pytest.mark.parametrize(
    "src",
    ["%matplotlib inline", "%load_ext reactive", "%pip install numpy>=1.0", "%cd /tmp",
     "%config InlineBackend.rc = {'figure.figsize': (6, 4)}", "%env A=1", "%reactive on",
     "%who", "%store data", "x?", "?x", "np.sin??", "%time", "%%time\n"],
)  # fmt: skip
def test_other_magics_contribute_nothing(src: str) -> None:
    assert analyze(src) == CellAnalysis()


def test_script_magic_out_err_proc_define_names() -> None:
    a = analyze("%%bash --out output --err=errors\necho hi")
    assert a.defs == names("output", "errors")


def test_cell_magic_line_is_interpolated() -> None:
    assert analyze("%%writefile {fname}\nhello").refs == names("fname")


def test_shell_interpolation() -> None:
    assert analyze("!ls {path}").refs == names("path")
    assert analyze("!echo $name $$HOME").refs == names("name")
    assert analyze("!echo {a.b['c']} {n + 1}").refs == {P("a", "b", Item("c")), P("n")}
    assert analyze("!find . -exec echo {} \\;").refs == set()
    assert analyze("%cd {folder}").refs == names("folder")


def test_shell_and_magic_assignments() -> None:
    a = analyze("files = !ls {d}")
    assert a.defs == names("files")
    assert a.refs == names("d")
    assert analyze("x = %who_ls").defs == names("x")


def test_xdel_deletes_a_name() -> None:
    a = analyze("%xdel big")
    assert a.defs == names("big")


def test_magics_inside_blocks() -> None:
    a = analyze("if flag:\n    %time y = f()\nelse:\n    !echo {msg}\n")
    assert a.defs == names("y")
    assert a.refs == names("flag", "f", "msg")


def test_magic_inside_function_body() -> None:
    a = analyze("def f():\n    %time r = g(k)\n    return r")
    assert a.error is None
    # ``r`` bound inside the magic's string is no local of ``f`` to Python: a global read.
    assert a.functions == {"f": names("g", "k", "r")}


def test_percent_inside_brackets_and_strings_is_not_a_magic() -> None:
    a = analyze("x = (a\n% b)\ns = '''\n%run evil\n!ls\n'''")
    assert a.refs == names("a", "b")
    assert a.conservative is None


def test_only_python_line_breaks_split_lines() -> None:
    # ``str.splitlines`` would cut this string at the form feed and see a magic.
    a = analyze('x = "a\x0c%run b"')
    assert a.defs == names("x")
    assert a.conservative is None


def test_keyword_equals_do_not_hide_a_shell_assignment() -> None:
    assert ipython_to_python("f(a='x', b = 1)\nz = !ls") == (
        "f(a='x', b = 1)\nz = get_ipython().getoutput('ls')\n"
    )
    assert analyze("y[g(k='=')] = !ls").defs == names("y")


def test_magic_called_explicitly_through_get_ipython() -> None:
    a = analyze("get_ipython().run_line_magic('time', 'y = f(q)')")
    assert a.defs == names("y")
    assert a.refs == names("f", "q")


# ------------------------------------------------- the built-in transformer
@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("%matplotlib inline", "get_ipython().run_line_magic('matplotlib', 'inline')\n"),
        ("!ls -la", "get_ipython().system('ls -la')\n"),
        ("!!ls", "get_ipython().getoutput('ls')\n"),
        ("x = !ls", "x = get_ipython().getoutput('ls')\n"),
        ("x = %who_ls", "x = get_ipython().run_line_magic('who_ls', '')\n"),
        ("%%time\nx = 1", "get_ipython().run_cell_magic('time', '', 'x = 1\\n')\n"),
        ("x?", "get_ipython().run_line_magic('pinfo', 'x')\n"),
        ("??x", "get_ipython().run_line_magic('pinfo2', 'x')\n"),
        ("if a:\n    %time f()\n", "if a:\n    get_ipython().run_line_magic('time', 'f()')\n"),
        ("!echo a \\\n  b", "get_ipython().system('echo a    b')\n"),
        ("x = 5 % 3", "x = 5 % 3\n"),
    ],
)
def test_builtin_transformer(src: str, expected: str) -> None:
    assert ipython_to_python(src) == expected


_IPY_LINES = [
    "x = 1", "%time y = f(x)", "!ls {p}", "z = !ls", "w = %who_ls", "if a:", "    %time g()",
    "    !echo $i", "    pass", "s = '''\n%notmagic\n!x\n'''", "t = (1,\n% 2)", "x?", "?y",
    "np.sin??", "for i in r:", "d = {'a':\n 1}", "q = 1 \\\n  + 2", "# %time x", "print('!')",
    "def f():", "    return k", "v = [\n!x,\n]", 'u = """x\n?x\n"""', "x = y == !z", "%%time",
    "!a \\\n b", "a = %time \\\n 1", "    x?", "  ", "", "r = 'it''s'", "x = !echo '#'",
]  # fmt: skip


@settings(max_examples=300, suppress_health_check=list(HealthCheck), deadline=None)
@given(st.lists(st.sampled_from(_IPY_LINES), max_size=8))
def test_builtin_transformer_agrees_with_ipython(lines: list[str]) -> None:
    inputtransformer2 = pytest.importorskip("IPython.core.inputtransformer2")
    src = "\n".join(lines)
    try:
        want = inputtransformer2.TransformerManager().transform_cell(src)
        compile(want, "<cell>", "exec")
    except (SyntaxError, ValueError):
        return  # IPython's output is not Python either: nothing to agree on
    assert ipython_to_python(src).rstrip("\n") == want.rstrip("\n")


def test_given_transform_is_used_instead() -> None:
    a = analyze("x = y", transform=lambda s: s.replace("y", "z"))
    assert a.refs == names("z")


def test_given_transform_is_used_for_magic_bodies() -> None:
    seen: list[str] = []

    def transform(src: str) -> str:
        seen.append(src)
        return ipython_to_python(src)

    assert analyze("%%time\nw = v", transform=transform).refs == names("v")
    assert seen == ["%%time\nw = v", "\nw = v\n"]


def test_ipython_transform_cell_gives_same_analysis() -> None:
    inputtransformer2 = pytest.importorskip("IPython.core.inputtransformer2")
    transform = inputtransformer2.TransformerManager().transform_cell
    for src in ["%time y = f(q)", "files = !ls {d}", "%%capture out\nz = w", "x?", "%run s.py"]:
        assert analyze(src, transform=transform) == analyze(src)


# ----------------------------------------------------- errors and odd input
def test_syntax_error_is_reported_not_raised() -> None:
    a = analyze("x = (")
    with pytest.raises(SyntaxError) as info:
        compile("x = (", "<cell>", "exec")
    assert a.error == SyntaxProblem(info.value.msg, 1, info.value.offset)
    assert a.defs == set() and a.refs == set() and a.functions == {}
    assert "line 1" in str(a.error)


def test_syntax_error_line_number() -> None:
    a = analyze("x = 1\ny = 2\nz = )")
    assert a.error is not None and a.error.lineno == 3


def test_indentation_error() -> None:
    assert analyze("if x:\npass").error is not None


def test_transform_raising_becomes_error() -> None:
    def boom(src: str) -> str:
        raise ValueError("transformer exploded")

    a = analyze("x = 1", transform=boom)
    assert a.error is not None and a.error.message == "transformer exploded"
    assert a.defs == set()


def test_transform_raising_syntax_error_keeps_line() -> None:
    def boom(src: str) -> str:
        raise SyntaxError("bad escape", ("<cell>", 2, 1, "x"))

    a = analyze("x = 1", transform=boom)
    assert a.error == SyntaxProblem("bad escape", 2, 1)


def test_transform_returning_non_string() -> None:
    assert analyze("x = 1", transform=lambda s: None).error is not None  # type: ignore[arg-type,return-value]


@pytest.mark.parametrize(
    "src",
    ["", "   \n\t\n", "# just a comment\n# another", "%matplotlib inline", "\x00", "x = '\x00'",
     "\ud800", "\ufeffx = 1", "x = 1\r\ny = x\r\n", "\t\tx = 1", "%%", "%", "!", "?", "??",
     "a = %", "a = !", "%%time?", "/", ",", ";", "\\", '"""', "'", "(" * 300, "λ = 1"],
)  # fmt: skip
def test_odd_input_never_raises(src: str) -> None:
    assert isinstance(analyze(src), CellAnalysis)


@pytest.mark.filterwarnings("error")
def test_compiler_warnings_are_not_errors() -> None:
    a = analyze("p = '\\d+'\nassert (x, 'msg')")
    assert a.error is None
    assert a.defs == names("p")


def test_empty_and_comment_cells_are_empty() -> None:
    for src in ["", "   \n  ", "# c\n# d"]:
        assert analyze(src) == CellAnalysis()


def test_dedents_a_uniformly_indented_cell() -> None:
    a = analyze("\n\n    x = 1\n    y = x + k")
    assert a.error is None
    assert a.refs == names("k")


def test_absurd_nesting_is_conservative_not_an_exception() -> None:
    a = analyze("x = " + " + ".join(["a"] * 30000))
    assert a.error is not None or a.conservative is not None or a.refs == names("a")


def test_non_string_source() -> None:
    assert analyze(None).error is not None  # type: ignore[arg-type]


def test_def_names_and_ref_names() -> None:
    a = analyze("d['a'] = s.value")
    assert a.def_names == {"d"}
    assert a.ref_names == {"s"}


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_analyze_never_raises_on_arbitrary_text(src: str) -> None:
    assert isinstance(analyze(src), CellAnalysis)


_ALPHABET = "%!?{}$()[]:=\n\t 'ax\"#\\.,;/*@-+0"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=60))
def test_analyze_never_raises_on_ipythonish_text(src: str) -> None:
    assert isinstance(analyze(src), CellAnalysis)
