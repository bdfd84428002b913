"""SQL is parameterised everywhere: every query handed to asyncpg is text fixed in the code.

A static check over shared/, services/ and bench/: the query argument of every asyncpg query method must be
built only from string literals, module constants, local names that only ever hold such text (or lists of it,
and the items a loop takes from such lists), conditional
choices between them, text methods of such text with such arguments, functions that only return such text,
private helpers every caller of which passes such text, and `len(...)` (a `$n` placeholder number). Values
travel as `$n` parameters; nothing a caller supplies can become SQL. The few statements that need an
identifier (a database, role or schema name cannot be a parameter) quote it with `shared.storage.db.quote_identifier`
and are listed in `IDENTIFIER_SITES` with the reason; statements not written in the code (migration files,
the bench re-planning recorded statements) are listed in `STATEMENTS_FROM_ELSEWHERE` with the reason.
"""

from __future__ import annotations

import ast
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("shared", "services", "bench")
QUERY_METHODS = frozenset({
    "execute", "executemany", "fetch", "fetchrow", "fetchval", "prepare", "cursor",
    "copy_from_table", "copy_from_query", "copy_to_table", "copy_records_to_table",
})
QUOTING_HELPER = "quote_identifier"

# (file, function) → why an identifier is interpolated there (quoted by QUOTING_HELPER, never a value).
IDENTIFIER_SITES: dict[tuple[str, str], str] = {
    ("shared/storage/db.py", "ensure_database"): "CREATE DATABASE takes the new database's name as an identifier",
    ("shared/storage/db.py", "drop_database"): "DROP DATABASE takes the database's name as an identifier",
    ("shared/storage/db.py", "provision"): "CREATE ROLE, GRANT and CREATE SCHEMA take role, database and schema names",
    ("bench/__main__.py", "running_sinks"): "the bench's sink processes each own a schema, named by the bench",
    ("bench/__main__.py", "measure_pipeline"): "the bench's sink processes each own a schema, named by the bench",
    ("bench/__main__.py", "wait_for_count"): "the bench's sink processes each own a schema, named by the bench",
}
# (file, function, query expression) → why that query is not written in the code: it was built and checked
# elsewhere, or it is a versioned migration file shipped with the code.
STATEMENTS_FROM_ELSEWHERE: dict[tuple[str, str, str], str] = {
    ("shared/storage/db.py", "migrate", "migration.sql"): "runs the migration files shipped in migrations/ directories",
    ("bench/scale.py", "Recording.fetch", "query"): "records the repositories' own statements, then runs them",
    ("bench/scale.py", "Recording.fetchrow", "query"): "records the repositories' own statements, then runs them",
    ("bench/scale.py", "plan_verdict", "f'EXPLAIN (FORMAT JSON) {query}'"):
        "reads the plans of the statements the bench recorded from the repositories",
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    function: str
    method: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} in {self.function}: {self.method}() {self.why}"


class _Scope:
    """The assignments of one function (or of the module), to decide whether a name only ever holds SQL text."""

    def __init__(self, node: ast.AST, parent: _Scope | None) -> None:
        self.node, self.parent = node, parent
        self.parameters: set[str] = set()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            self.parameters = {a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)}
            self.parameters |= {a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None}
        self.values: dict[str, list[ast.expr | None]] = {}  # None: assigned something not traceable
        self.grown: dict[str, list[ast.expr | None]] = {}  # what was appended to a list after its assignment
        self.functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        for statement in _own_statements(node):
            self._collect(statement)

    def _bind(self, target: ast.expr, value: ast.expr | None) -> None:
        if isinstance(target, ast.Name):
            self.values.setdefault(target.id, []).append(value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for index, element in enumerate(target.elts):
                self._bind(element, _element(value, index, len(target.elts)))

    def _collect(self, statement: ast.AST) -> None:
        if isinstance(statement, ast.Assign):
            for target in statement.targets:
                self._bind(target, statement.value)
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            self._bind(statement.target, statement.value)
        elif isinstance(statement, ast.AugAssign):
            self._bind(statement.target, statement.value if isinstance(statement.op, ast.Add) else None)
        elif isinstance(statement, (ast.For, ast.AsyncFor)):
            self._bind(statement.target, _Item(statement.iter))
        elif isinstance(statement, (ast.With, ast.AsyncWith)):
            for item in statement.items:
                if item.optional_vars is not None:
                    self._bind(item.optional_vars, None)
        elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.functions[statement.name] = statement
        elif isinstance(statement, ast.NamedExpr):
            self._bind(statement.target, statement.value)
        elif (isinstance(statement, ast.Call) and isinstance(statement.func, ast.Attribute)
              and isinstance(statement.func.value, ast.Name) and statement.func.attr in ("append", "extend")):
            # A list of SQL fragments grows by appending; what is appended must be SQL text too.
            argument = statement.args[0] if statement.args else None
            grown = self.grown.setdefault(statement.func.value.id, [])
            if statement.func.attr == "append":
                grown.append(argument)
            else:
                grown.extend(argument.elts if isinstance(argument, (ast.List, ast.Tuple)) else [None])


def _own_statements(node: ast.AST):
    """Every node of this scope, not descending into nested functions or classes (their own scopes)."""
    for child in ast.iter_child_nodes(node):
        yield child
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            yield from _own_statements(child)


class _Item(ast.expr):
    """What a loop binds its target to: an item of `source`, or part `index` (of `size`) of one, unpacked."""

    _fields = ()

    def __init__(self, source: ast.expr, index: int | None = None, size: int = 0) -> None:
        super().__init__()
        self.source, self.index, self.size = source, index, size


def _element(value: ast.expr | None, index: int, size: int) -> ast.expr | None:
    """The `index`-th element of an unpacked tuple (or of both branches of a conditional tuple)."""
    if isinstance(value, _Item) and value.index is None:
        return _Item(value.source, index, size)
    if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == size:
        return value.elts[index]
    if isinstance(value, ast.IfExp):
        body, orelse = _element(value.body, index, size), _element(value.orelse, index, size)
        if body is not None and orelse is not None:
            return ast.IfExp(test=value.test, body=body, orelse=orelse)
    return None


class _Checker:
    def __init__(self, path: str, tree: ast.Module) -> None:
        self.path, self.tree = path, tree
        self.findings: list[Finding] = []
        self.used_sites: set[tuple[str, ...]] = set()
        # Every call in the module by the name it calls, to follow a private helper's parameters to its callers.
        self.calls: dict[str, list[tuple[ast.Call, _Scope]]] = {}

    def run(self) -> None:
        module = _Scope(self.tree, None)
        self._visit(self.tree, module, "", self._index)
        self._visit(self.tree, module, "", self._check_call)

    def _index(self, call: ast.Call, scope: _Scope, _: str) -> None:
        name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)
        if name is not None:
            self.calls.setdefault(name, []).append((call, scope))

    def _visit(self, node: ast.AST, scope: _Scope, qualname: str, on_call) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{qualname}.{child.name}" if qualname else child.name
                self._visit(child, _Scope(child, scope), name, on_call)
            elif isinstance(child, ast.ClassDef):
                self._visit(child, scope, f"{qualname}.{child.name}" if qualname else child.name, on_call)
            else:
                if isinstance(child, ast.Call):
                    on_call(child, scope, qualname)
                self._visit(child, scope, qualname, on_call)

    def _check_call(self, call: ast.Call, scope: _Scope, function: str) -> None:
        if not (isinstance(call.func, ast.Attribute) and call.func.attr in QUERY_METHODS):
            return
        query = call.args[0] if call.args else next(
            (k.value for k in call.keywords if k.arg in ("query", "table_name", "command")), None)
        if query is None:
            return  # not a query call (e.g. a method of the same name without a statement)
        site = (self.path, function or "<module>")
        elsewhere = (*site, ast.unparse(query))
        if elsewhere in STATEMENTS_FROM_ELSEWHERE:
            self.used_sites.add(elsewhere)
            return
        why = _Proof(scope, self.calls, quoting_allowed=site in IDENTIFIER_SITES).refute(query)
        if why is None:
            if site in IDENTIFIER_SITES and _calls(query, QUOTING_HELPER):
                self.used_sites.add(site)
            return
        self.findings.append(Finding(self.path, call.lineno, site[1], call.func.attr, why))


def _calls(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name
               for n in ast.walk(node))


_TEXT_METHODS = frozenset({"format", "join", "split", "strip", "lower", "upper", "replace"})


class _Proof:
    """Shows that an expression can only be SQL text written in the code, or says why it cannot."""

    def __init__(self, scope: _Scope, calls: dict[str, list[tuple[ast.Call, _Scope]]], *,
                 quoting_allowed: bool) -> None:
        self.scope, self.calls, self.quoting_allowed = scope, calls, quoting_allowed
        self._resolving: set[tuple[int, str]] = set()

    def refute(self, node: ast.expr) -> str | None:
        return self._refute(node, self.scope)

    def _refute(self, node: ast.expr, scope: _Scope) -> str | None:
        if isinstance(node, ast.Constant):
            return None
        if isinstance(node, ast.JoinedStr):
            return next((why for part in node.values if isinstance(part, ast.FormattedValue)
                         if (why := self._refute(part.value, scope))), None)
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Mod):
                return "builds its query with % formatting"
            if isinstance(node.op, ast.Add):
                return self._refute(node.left, scope) or self._refute(node.right, scope)
            return f"builds its query with {type(node.op).__name__}"
        if isinstance(node, ast.IfExp):
            return self._refute(node.body, scope) or self._refute(node.orelse, scope)
        if isinstance(node, (ast.Tuple, ast.List)):
            return next((why for element in node.elts if (why := self._refute(element, scope))), None)
        if isinstance(node, ast.Name):
            return self._refute_name(node.id, scope)
        if isinstance(node, ast.Call):
            return self._refute_call(node, scope)
        if isinstance(node, (ast.GeneratorExp, ast.ListComp)):
            return self._refute_comprehension(node, scope)
        if isinstance(node, _Item):
            return self._refute_item(node, scope)
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            return self._refute_lookup(node, scope)
        return f"builds its query from {ast.unparse(node)!r}"

    def _refute_lookup(self, node: ast.Subscript, scope: _Scope) -> str | None:
        """`_PAGE[kind]`: a name only ever assigned a dict written in the code, every value of it SQL text (the key
        only chooses among them)."""
        name = node.value.id  # type: ignore[attr-defined]
        home: _Scope | None = scope
        while home is not None and name not in home.values:
            if name in home.parameters:
                return f"looks its query up in parameter {name!r}"
            home = home.parent
        if home is None or not all(isinstance(v, ast.Dict) for v in home.values[name]):
            return f"builds its query from {ast.unparse(node)!r}"
        for table in home.values[name]:
            for value in table.values:  # type: ignore[union-attr]
                if why := self._refute(value, home):
                    return why
        return None

    def _refute_item(self, item: _Item, scope: _Scope) -> str | None:
        items = self._items(item.source, scope)
        if items is None:  # not a list this check can see into: its items are SQL text if it is (text's pieces)
            if item.index is None:
                return self._refute(item.source, scope)
            return f"unpacks the items of {ast.unparse(item.source)!r}, which it cannot trace"
        for each, home in items:
            part = each if item.index is None else _element(each, item.index, item.size)
            if part is None:
                return f"unpacks the items of {ast.unparse(item.source)!r}, which it cannot trace"
            if why := self._refute(part, home):
                return why
        return None

    @staticmethod
    def _items(source: ast.expr, scope: _Scope) -> list[tuple[ast.expr | None, _Scope]] | None:
        """The items of a list or tuple written in the code (or of a name only ever assigned such, and grown)."""
        if isinstance(source, (ast.Tuple, ast.List)):
            return [(element, scope) for element in source.elts]
        if not isinstance(source, ast.Name):
            return None
        home: _Scope | None = scope
        while home is not None and source.id not in home.values:
            if source.id in home.parameters:
                return None
            home = home.parent
        if home is None or not all(isinstance(v, (ast.Tuple, ast.List)) for v in home.values[source.id]):
            return None
        assigned = [element for value in home.values[source.id] for element in value.elts]  # type: ignore[union-attr]
        return [(element, home) for element in assigned + home.grown.get(source.id, [])]

    def _refute_comprehension(self, node: ast.GeneratorExp | ast.ListComp, scope: _Scope) -> str | None:
        """`', '.join('p.' + c for c in _COLUMNS.split(','))`: each loop name holds what its iterable yields."""
        inner = _Scope(ast.Module(body=[], type_ignores=[]), scope)
        for generator in node.generators:
            if generator.ifs and any(isinstance(n, ast.NamedExpr) for g in generator.ifs for n in ast.walk(g)):
                return f"builds its query from {ast.unparse(node)!r}"
            inner._bind(generator.target, _Item(generator.iter))
        return self._refute(node.elt, inner)

    def _refute_name(self, name: str, scope: _Scope) -> str | None:
        current: _Scope | None = scope
        while current is not None and name not in current.values and name not in current.functions:
            if name in current.parameters:
                return self._refute_parameter(name, current)
            current = current.parent
        if current is None:
            return f"interpolates {name!r}, which is not SQL text written here"
        key = (id(current), name)
        if key in self._resolving:
            return None  # `where += ...`: the other assignments decide
        self._resolving.add(key)
        try:
            for value in current.values.get(name, []) + current.grown.get(name, []):
                if value is None:
                    return f"interpolates {name!r}, which is assigned something other than SQL text"
                if why := self._refute(value, current):
                    return why
            return None
        finally:
            self._resolving.discard(key)

    def _refute_parameter(self, name: str, scope: _Scope) -> str | None:
        """A private helper's parameter holds SQL text if every call of the helper in its module passes some."""
        function = scope.node
        assert isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
        refused = f"interpolates the parameter {name!r}"
        callers = self.calls.get(function.name, [])
        if not function.name.startswith("_") or not callers:
            return refused
        key = (id(scope), name)
        if key in self._resolving:
            return refused  # a helper that passes its own parameter back to itself
        positional = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
        if positional[:1] in (["self"], ["cls"]):
            positional = positional[1:]
        self._resolving.add(key)
        try:
            for call, caller_scope in callers:
                passed = next((k.value for k in call.keywords if k.arg == name), None)
                if passed is None and name in positional and positional.index(name) < len(call.args):
                    passed = call.args[positional.index(name)]
                if passed is None or isinstance(passed, ast.Starred):
                    return refused
                if why := self._refute(passed, caller_scope):
                    return f"{refused}, and a caller at line {call.lineno} {why}"
            return None
        finally:
            self._resolving.discard(key)

    def _refute_call(self, call: ast.Call, scope: _Scope) -> str | None:
        func = call.func
        if isinstance(func, ast.Name) and func.id == "len":
            return None  # a `$n` placeholder number
        if isinstance(func, ast.Name) and func.id == QUOTING_HELPER:
            return None if self.quoting_allowed else (
                "quotes an identifier outside the allowed sites (add it to IDENTIFIER_SITES with the reason)")
        if isinstance(func, ast.Attribute) and func.attr in _TEXT_METHODS:
            # A method of SQL text with SQL text for arguments (a template filled with a placeholder, a list
            # of columns split and prefixed) is SQL text; with anything else it is how values get in.
            arguments = [*call.args, *(k.value for k in call.keywords)]
            why = self._refute(func.value, scope) or next(
                (why for argument in arguments if (why := self._refute(argument, scope))), None)
            if why is None:
                return None
            return f"builds its query with str.{func.attr}: {why}"
        if isinstance(func, ast.Name):
            found = self._function(func.id, scope)
            if found is not None:
                defined, home = found
                inner = _Scope(defined, home)
                returns = [n.value for n in _own_statements(defined) if isinstance(n, ast.Return)]
                return next((f"calls {func.id}(), which {why}" for value in returns
                             if (why := "returns nothing" if value is None else self._refute(value, inner))), None)
        return f"builds its query with a call to {ast.unparse(func)}()"

    @staticmethod
    def _function(name: str, scope: _Scope | None) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, _Scope] | None:
        """The function a name calls, and the scope it is defined in."""
        while scope is not None:
            if name in scope.functions:
                return scope.functions[name], scope
            scope = scope.parent
        return None


def check_source(source: str, path: str = "snippet.py") -> tuple[list[Finding], set[tuple[str, ...]]]:
    checker = _Checker(path, ast.parse(source))
    checker.run()
    return checker.findings, checker.used_sites


def check_tree() -> tuple[list[Finding], set[tuple[str, ...]]]:
    findings: list[Finding] = []
    used: set[tuple[str, ...]] = set()
    for top in CHECKED:
        for file in sorted((ROOT / top).rglob("*.py")):
            found, sites = check_source(file.read_text(), file.relative_to(ROOT).as_posix())
            findings += found
            used |= sites
    return findings, used


def test_every_query_in_the_code_is_parameterised():
    findings, _ = check_tree()
    assert not findings, "SQL built from values:\n" + "\n".join(map(str, findings))


def test_every_allowed_site_still_exists():
    _, used = check_tree()
    stale = (IDENTIFIER_SITES.keys() | STATEMENTS_FROM_ELSEWHERE.keys()) - used
    assert not stale, f"allowed sites that no longer build SQL (remove them): {sorted(stale)}"


def test_the_check_sees_queries_everywhere_in_the_tree():
    """A check that finds no query would pass for the wrong reason."""
    calls = sum(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in QUERY_METHODS
        for top in CHECKED for file in (ROOT / top).rglob("*.py") for node in ast.walk(ast.parse(file.read_text()))
    )
    assert calls > 50


def test_the_linters_sql_waiver_is_this_check():
    """ruff's S608 (SQL built as text) is waived in pyproject.toml where this check holds SQL, and only there."""
    lint = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    waived = {pattern for pattern, rules in lint["per-file-ignores"].items() if "S608" in rules}
    assert waived == {f"{top}/**" for top in CHECKED}


SAFE = '''
_COLUMNS = "permit_id, nib"
_LOCKED = " FOR UPDATE"
_IN_REGION = "({p}::text IS NULL OR regency_code = {p})"

def _clause(regency):
    return " AND regency_code = $1" if regency else ""

class Repository:
    async def get(self, permit_id, lock):
        suffix = _LOCKED if lock else ""
        return await self._connection.fetchrow(f"SELECT {_COLUMNS} FROM permits WHERE permit_id = $1{suffix}",
                                               permit_id)

    async def search(self, status, regency):
        conditions, values = ["seq > $1"], [0]
        for column, value in (("status", status), ("regency_code", regency)):
            if value is not None:
                values.append(value)
                conditions.append(f"{column} = ${len(values)}")
        where = "deadline > $1"
        where += _clause(regency)
        await self._connection.fetch("SELECT " + _COLUMNS + " FROM permits WHERE " + " AND ".join(conditions)
                                     + " AND " + where, *values)
        await self._connection.copy_records_to_table("permits", records=[], columns=["nib"])

    async def in_region(self, region):
        await self._rows(f"WHERE {_IN_REGION.format(p='$1')}", region)
        await self._rows(where="WHERE true")

    async def listing(self, province, region):
        region_column = "regency_code" if region and "." in region else "province_code"
        filters = [("province_code", "=", province), (region_column, "=", region)]
        where, args = ["true"], []
        for column, operator, value in filters:
            if value is not None:
                args.append(value)
                where.append(f"{column} {operator} ${len(args)}")
        await self._connection.fetch(f"SELECT 1 FROM plants WHERE {' AND '.join(where)}", *args)

    async def _rows(self, where, *args):
        columns = ", ".join("p." + c.strip() for c in _COLUMNS.split(","))
        return await self._connection.fetch(f"SELECT {columns} FROM permits p {where}", *args)

    async def waiting(self, kind):
        return await self._connection.fetch(_PAGE[kind] + _ORDER[kind], 50)

_PAGE = {"application": "SELECT 1 FROM permits", "objection": "SELECT 1 FROM " + "objections"}
_ORDER = {"application": f" ORDER BY {_COLUMNS} LIMIT $1", "objection": " LIMIT $1"}
'''


def test_constant_sql_passes():
    assert check_source(SAFE)[0] == []


@pytest.mark.parametrize(("snippet", "why"), [
    ('async def f(c, nib):\n    await c.fetch(f"SELECT * FROM permits WHERE nib = \'{nib}\'")', "parameter 'nib'"),
    ('async def f(c, nib):\n    await c.execute("DELETE FROM permits WHERE nib = \'%s\'" % nib)', "% formatting"),
    ('async def f(c, nib):\n    await c.fetchrow("SELECT * FROM permits WHERE nib = {}".format(nib))', "str.format"),
    ('async def f(c, nib):\n    await c.fetchval("SELECT 1 FROM permits WHERE nib = " + nib)', "parameter 'nib'"),
    ('async def f(c, request):\n    q = "SELECT 1"\n    q += request.query\n    await c.execute(q)', "request.query"),
    ('async def f(c, rows, table):\n    await c.executemany(f"INSERT INTO {table} VALUES ($1)", rows)', "'table'"),
    ('async def f(c, name):\n    await c.copy_records_to_table(name, records=[])', "parameter 'name'"),
    ('async def f(c, where):\n    await c.cursor(query=f"SELECT 1 WHERE {where}")', "parameter 'where'"),
    ('async def f(c, name):\n    await c.prepare(f"SELECT 1 FROM {quote_identifier(name)}")', "IDENTIFIER_SITES"),
    ('async def f(c, ids):\n    await c.fetch("SELECT 1 WHERE id IN (" + ", ".join(ids) + ")")', "parameter 'ids'"),
    ('def clause(x):\n    return x\nasync def f(c, v):\n    await c.fetch("SELECT 1" + clause(v))', "calls clause()"),
    ('async def f(c, v):\n    q = {"a": "SELECT 1", "b": v}\n    await c.fetch(q["a"])', "parameter 'v'"),
    ('async def f(c, q):\n    await c.fetch(q["a"])', "parameter 'q'"),
    ('Q = dict(a="SELECT 1")\nasync def f(c):\n    await c.fetch(Q["a"])', "Q[\'a\']"),
    ('async def f(c, v):\n    parts = ["1"]\n    parts.append(v)\n    await c.fetch(" ".join(parts))', "'v'"),
    ('async def f(c, cs):\n    await c.fetch("SELECT " + ", ".join("p." + x for x in cs))', "parameter 'cs'"),
    ('async def f(c, sort, v):\n    for column, value in [("nib", v), (sort, v)]:\n'
     '        await c.fetch(f"SELECT 1 ORDER BY {column}", value)', "parameter 'sort'"),
    ('async def f(c, rows):\n    for column, value in rows:\n        await c.fetch(f"SELECT {column}", value)',
     "unpacks the items of 'rows'"),
    ('async def rows(c, where):\n    await c.fetch(f"SELECT 1 {where}")\nasync def g(c):\n    await rows(c, "")',
     "parameter 'where'"),  # a public helper may be called from anywhere
    ('async def _rows(c, where):\n    await c.fetch(f"SELECT 1 {where}")\n'
     'async def g(c):\n    await _rows(c, "WHERE true")\nasync def h(c, w):\n    await _rows(c, w)',
     "caller at line 6 interpolates the parameter 'w'"),
])
def test_a_planted_violation_is_found(snippet, why):
    findings, _ = check_source(snippet)
    assert len(findings) == 1, findings
    assert why in findings[0].why, findings[0]


def test_an_allowed_identifier_site_must_quote_with_the_helper():
    quoted = 'async def ensure_database(c, name):\n    await c.execute(f"CREATE DATABASE {quote_identifier(name)}")'
    bare = 'async def ensure_database(c, name):\n    await c.execute(f\'CREATE DATABASE "{name}"\')'
    assert check_source(quoted, "shared/storage/db.py") == ([], {("shared/storage/db.py", "ensure_database")})
    assert [f.why for f in check_source(bare, "shared/storage/db.py")[0]] == ["interpolates the parameter 'name'"]


# The platform writes SQL keywords in capitals; prose says "like" in lower case.
PATTERN_MATCH = re.compile(r"\b(I?LIKE|SIMILAR TO)\b|~~")


def test_no_query_matches_by_a_pattern():
    """A prefix is matched with starts_with(), never with LIKE and a `%` appended: a value holding `%` or `_` (a
    region claim, a search term) can then never widen what a query finds."""
    found = []
    for path in sorted(p for top in ("shared", "services") for p in (ROOT / top).rglob("*.*")
                       if p.suffix in {".py", ".sql"}):
        tree = ast.parse(path.read_text()) if path.suffix == ".py" else None
        texts = ([n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
                 if tree else [path.read_text()])
        found += [f"{path.relative_to(ROOT)}: {text.strip()[:80]!r}" for text in texts if PATTERN_MATCH.search(text)]
    assert not found, "\n".join(found)
