"""The condition language: both forms parse to the same tree, print back, point at errors, and
compile to SQL that gives the same answers on SQLite and PostgreSQL."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, insert, select

from clm.conditions import (
    ConditionError,
    ast,
    compile_condition,
    parse_condition,
    parse_json,
    parse_text,
    to_json,
    to_text,
)
from clm.conditions.ast import (
    And,
    Arith,
    Call,
    Compare,
    Const,
    Field,
    InList,
    IsNull,
    Literal,
    Not,
    Or,
    Window,
)
from clm.conditions.compiler import Typed


def test_text_and_json_forms_describe_the_same_condition():
    text = 'stage = "retention" and events(product_view, last 14d) >= 3 and not purchased(last 60d)'
    as_json = {
        "and": [
            {"field": "stage", "op": "=", "value": "retention"},
            {
                "op": ">=",
                "left": {"fn": "events", "args": [{"field": "product_view"}, {"last_days": 14}]},
                "right": 3,
            },
            {"not": {"test": {"fn": "purchased", "args": [{"last_days": 60}]}}},
        ]
    }
    assert parse_text(text) == parse_json(as_json)
    assert to_json(parse_text(text)) == as_json
    assert to_text(parse_json(as_json)) == text


def test_precedence_and_brackets():
    cond = parse_text("a = 1 or b = 2 and not c = 3")
    assert cond == Or(
        (
            Compare("=", Field("a"), Literal(1)),
            And((Compare("=", Field("b"), Literal(2)), Not(Compare("=", Field("c"), Literal(3))))),
        )
    )
    assert parse_text("(a + b) * 2 > 10") == Compare(
        ">", Arith("*", Arith("+", Field("a"), Field("b")), Literal(2)), Literal(10)
    )
    assert parse_text('x in [1, 2.5, "z"]') == InList(Field("x"), (1, 2.5, "z"))
    assert parse_text("x not in []") == InList(Field("x"), (), negated=True)
    assert parse_text("x is not null") == IsNull(Field("x"), negated=True)
    assert parse_text("events(x, last 2w)") == ast.Test(Call("events", (Field("x"), Window(14))))
    assert parse_text("TRUE") == Const(True)
    assert to_text(parse_text("a = 1 or (b = 2 and c = 3)")) == "a = 1 or (b = 2 and c = 3)"


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("orders >=", 10, "expected a field"),
        ("orders > 3 and", 15, "expected a field"),
        ("(orders > 1", 12, "expected `)`"),
        ("orders @ 2", 8, "unexpected character"),
        ("events(x, last 0d) > 1", 16, "whole, positive number of days"),
        ('city = "Shanghai', 8, "unexpected character"),
        ("orders > 1 orders", 12, "expected `and`, `or`"),
        ("", 1, "empty"),
        ("events(x, last 36501d) > 1", 16, "at most 36500 days"),
        ("events(x, last 5215w) > 1", 16, "at most 36500 days"),  # 36,505 days
        ("orders > 1000000000000001", 10, "out of range"),
        ("orders > -1e16", 11, "out of range"),
        ("orders > 1e999", 10, "must be finite"),
        ("not " * 21 + "orders > 1", 81, "deeper than 20 levels"),
        ("(" * 30 + "orders > 1" + ")" * 30, 21, "deeper than 20 levels"),
        ("abs(" * 25 + "orders" + ")" * 25 + " > 1", 81, "deeper than 20 levels"),
        ("orders" + " * 2" * 19 + " > 1", 1, "deeper than 20 levels"),
    ],
)
def test_text_errors_point_at_the_column(text, column, words):  # and the documented limits
    with pytest.raises(ConditionError) as err:
        parse_text(text)
    assert err.value.pos + 1 == column
    assert words in err.value.message and f"column {column}" in err.value.message


@pytest.mark.parametrize(
    ("node", "path", "words"),
    [
        ({"and": []}, "condition.and", "non-empty list"),
        ({"or": [{"field": "a", "op": "~", "value": 1}]}, "condition.or[0].op", "unknown operator"),
        ({"field": "a", "op": "=", "value": [1]}, "condition.value", "expected a number"),
        ({"field": "a", "op": "in", "values": 3}, "condition.values", "list of values"),
        ({"not": {"field": "a", "op": ">"}}, "condition.not", "missing `value`"),
        (
            {"op": "=", "left": {"arith": "^", "left": 1, "right": 2}, "right": 1},
            "condition.left.arith",
            "expected one of",
        ),
        ({"field": "a", "op": "=", "value": 1, "extra": 1}, "condition", "unexpected key 'extra'"),
        ("a > 1", "condition", None),
        ({"field": "a", "op": ">", "value": 10**16}, "condition.value", "out of range"),
        ({"field": "a", "op": ">", "value": float("inf")}, "condition.value", "must be finite"),
        (
            {"test": {"fn": "purchased", "args": [{"last_days": 36501}]}},
            "condition.test.args[0].last_days",
            "at most 36500 days",
        ),
        ({"or": [{"not": {"not": {"test": {"field": "a"}}}}] * 2}, None, None),
    ],
)
def test_json_errors_name_the_path(node, path, words):
    if words is None:  # a string is the text form, and a shallow tree is fine
        assert parse_condition(node) == (Compare(">", Field("a"), Literal(1)) if path else parse_json(node))
        return
    with pytest.raises(ConditionError) as err:
        parse_json(node)
    assert err.value.field == path and words in err.value.message


# -- round trip on generated trees --------------------------------------------------------------
names = st.sampled_from(["orders", "revenue", "city", "attr.vip", "x_1"])
scalars = st.one_of(
    st.integers(-1000, 1000),
    st.floats(-1e6, 1e6, allow_nan=False).filter(lambda f: f != 0 or str(f) == "0.0"),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
    st.booleans(),
)
exprs = st.recursive(
    st.one_of(names.map(Field), scalars.map(Literal)),
    lambda inner: st.one_of(
        st.tuples(st.sampled_from("+-*/"), inner, inner).map(lambda t: Arith(*t)),
        st.tuples(st.sampled_from(["max", "min"]), st.lists(inner, min_size=1, max_size=3)).map(
            lambda t: Call(t[0], tuple(t[1]))
        ),
    ),
    max_leaves=6,
)
leaves = st.one_of(
    st.tuples(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), exprs, exprs).map(lambda t: Compare(*t)),
    st.tuples(exprs, st.lists(scalars.filter(lambda v: v is not None), max_size=3), st.booleans()).map(
        lambda t: InList(t[0], tuple(t[1]), t[2])
    ),
    st.tuples(exprs, st.booleans()).map(lambda t: IsNull(*t)),
    st.booleans().map(Const),
)
conditions = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
        inner.map(Not),
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(conditions)
def test_every_tree_survives_both_forms(tree):
    assert parse_json(to_json(tree)) == tree
    assert to_text(parse_text(to_text(tree))) == to_text(tree)


# -- compiling and running --------------------------------------------------------------------
meta = MetaData()
people = Table(
    "cond_people",
    meta,
    Column("id", Integer, primary_key=True),
    Column("orders", Integer),
    Column("gap", Float),
    Column("city", String(50)),
)


class Space:
    def field(self, name):
        kinds = {"orders": "number", "gap": "number", "city": "text"}
        return Typed(people.c[name], kinds[name]) if name in kinds else None

    def names(self):
        return ["orders", "gap", "city"]

    def function(self, call, compile_arg, fail):
        return None


ROWS = [
    {"id": 1, "orders": 0, "gap": None, "city": "Shanghai"},
    {"id": 2, "orders": 1, "gap": None, "city": "Beijing"},
    {"id": 3, "orders": 4, "gap": 12.0, "city": "Shanghai"},
    {"id": 4, "orders": 7, "gap": 40.0, "city": None},
]


@pytest.fixture
def table(engine):
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(people.delete())
        conn.execute(insert(people), ROWS)
    yield engine
    meta.drop_all(engine)


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("orders >= 1", [2, 3, 4]),
        ('orders > 3 * 1 and city = "Shanghai"', [3]),
        ("gap > max(3 * gap, 30) or orders = 0", [1]),
        ("max(3 * gap, 30) = 30", [1, 2]),  # NULLs are skipped, on both databases
        ("not (gap < 20)", [1, 2, 4]),  # `not` means "not true": a missing gap is not < 20
        ("gap is null", [1, 2]),
        ('city in ["Beijing", "Xian"] or city is null', [2, 4]),
        ('city not in ["Shanghai"]', [2]),
        ("orders / 2 = 0.5", [2]),  # real division
        ("orders / 0 > 1", []),  # division by zero is NULL, never true
        ("coalesce(gap, 0) + orders >= 16", [3, 4]),
        ("abs(0 - orders) = 7", [4]),
        ("true", [1, 2, 3, 4]),
        ("false or orders = 1", [2]),
    ],
)
def test_compiled_conditions_select_the_right_rows(table, text, ids):
    where = compile_condition(parse_text(text), Space(), text=text)
    with table.connect() as conn:
        got = [r.id for r in conn.execute(select(people.c.id).where(where).order_by(people.c.id))]
    assert got == ids


@pytest.mark.parametrize(
    ("text", "words", "column"),
    [
        ("ordrs > 1", "unknown field 'ordrs' (did you mean 'orders'?)", 1),
        ("city > 3", "cannot compare text with number", 1),
        ("orders = null", "use `is null`", 1),
        ("city + 1 > 2", "needs numbers, not text", 1),
        ("orders", "number is not a condition", 1),
        ("nope(1) > 2", "unknown function nope()", 1),
        ('orders in [1, "a"]', "cannot compare number with text", 1),
        ("max(orders, city) > 1", "mixes number and text", 1),
    ],
)
def test_compile_errors_name_the_problem(text, words, column):
    with pytest.raises(ConditionError) as err:
        compile_condition(parse_text(text), Space(), text=text)
    assert words in err.value.message and err.value.pos + 1 == column
