"""Trace summaries, the conversation's tool-call pairing and the span tree (no Flask)."""

from __future__ import annotations

import pytest

from trackio_flask import traces


def span(id, parent=None, start=None, end=None, **extra):
    return {"id": id, "parent_id": parent, "name": id, "kind": extra.pop("kind", "span"),
            "start_time": start, "end_time": end, **extra}


def test_summary_takes_latency_from_first_start_to_last_end_and_sums_tokens_and_cost():
    spans = [span("a", start="2026-01-01T00:00:00Z", end="2026-01-01T00:00:02Z",
                  status="success", usage={"input_tokens": 10, "output_tokens": 5},
                  cost_usd=0.5),
             span("b", "a", start="2026-01-01T00:00:01Z", end="2026-01-01T00:00:03.5Z",
                  status="success", usage={"prompt_tokens": 1, "completion_tokens": 2,
                                           "total_tokens": 4}, cost_usd="0.25")]
    summary = traces.summarize(spans, {})
    assert summary == traces.Summary("success", 3500.0, 19.0, 0.75, 2)


def test_one_failed_span_makes_the_trace_an_error_whatever_the_metadata_says():
    spans = [span("a", status="success"), span("b", error="boom")]
    assert traces.summarize(spans, {"status": "success"}).status == "error"


def test_metadata_supplies_status_latency_and_cost_when_spans_do_not():
    summary = traces.summarize([], {"status": "ok", "latency_ms": 12, "cost_usd": 0.1})
    assert (summary.status, summary.latency_ms, summary.cost_usd) == ("ok", 12.0, 0.1)
    assert traces.status_class("ok") == "unknown"
    assert traces.status_class("FAILED") == "error"


def test_tool_calls_are_paired_with_the_tool_message_that_answers_them():
    messages = [{"role": "user", "content": "weather?"},
                {"role": "assistant", "tool_calls": [
                    {"id": "c1", "function": {"name": "get", "arguments": '{"city": "P"}'}},
                    {"id": "c2", "function": {"name": "never", "arguments": "not json"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": '{"t": 21}', "is_error": True},
                {"role": "tool", "tool_call_id": "ghost", "content": "orphan"}]
    conversation = traces.conversation(messages)
    calls = conversation[1].tool_calls
    assert [(c.name, c.result, c.failed) for c in calls] == [
        ("get", '{\n  "t": 21\n}', True), ("never", None, False)]
    assert calls[0].arguments == '{\n  "city": "P"\n}'
    assert calls[1].arguments == "not json"
    assert [m.answers for m in conversation] == ["", "", "c1", ""]


def test_messages_without_spans_give_tool_operations():
    spans = traces.execution_spans([], [
        {"role": "assistant", "tool_calls": [{"id": "x", "function": {"name": "f"}}]},
        {"role": "tool", "tool_call_id": "x", "content": "done"}])
    assert [(s["name"], s["kind"], s["output"]) for s in spans] == [("f", "tool", "done")]


def test_span_tree_nests_by_parent_orders_by_start_and_places_waterfall_bars():
    spans = [span("root", start="2026-01-01T00:00:00Z", end="2026-01-01T00:00:04Z"),
             span("late", "root", start="2026-01-01T00:00:03Z", end="2026-01-01T00:00:04Z"),
             span("early", "root", start="2026-01-01T00:00:01Z", end="2026-01-01T00:00:02Z"),
             span("leaf", "early", start="2026-01-01T00:00:01Z", duration_ms=500),
             span("orphan", "missing")]
    tree, total = traces.span_tree(spans)
    assert total == 4000
    assert [node.name for node in tree] == ["root", "orphan"]
    root = tree[0]
    assert [child.name for child in root.children] == ["early", "late"]
    early = root.children[0]
    assert (early.offset_pct, early.width_pct, early.depth) == (25.0, 25.0, 1)
    assert early.children[0].name == "leaf" and early.children[0].width_pct == 12.5
    assert tree[1].offset_pct is None


def test_a_loop_of_parents_is_drawn_once_and_never_recurses():
    tree, _ = traces.span_tree([span("a", "b"), span("b", "a")])
    names = []

    def walk(nodes):
        for node in nodes:
            names.append(node.name)
            walk(node.children)
    walk(tree)
    assert sorted(names) == ["a", "b"]


@pytest.mark.parametrize("ms,text", [(None, "—"), (0.5, "500µs"), (12.4, "12ms"),
                                     (2500, "2.50s"), (12_000, "12.0s"), (125_000, "2m 5s")])
def test_durations_read_like_trackio(ms, text):
    assert traces.format_duration(ms) == text


def test_long_values_are_cut_and_say_so():
    text = traces.pretty("x" * (traces.MAX_VALUE_CHARS + 10))
    assert text.endswith("(10 more characters)")
